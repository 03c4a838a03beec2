//! `sshd`: reads OpenSSH's log lines (the `summary` of an event whose `processname` is
//! `sshd`) into MozDef's authentication fields, as MozDef's `parse_sshd` plugin did.
//!
//! Understood (OpenSSH 7 to 9 wording): `Accepted|Failed <method> for [invalid user ]USER
//! from IP port N ssh2[: KEYTYPE FINGERPRINT]`, `Invalid user USER from IP [port N]`,
//! `Disconnected from [authenticating |invalid ]user USER IP port N [preauth]`,
//! `Connection closed by …`, `Received disconnect from IP port N:CODE: …`, `maximum
//! authentication attempts exceeded for …`, PAM's `session opened|closed for user …` and
//! `authentication failure; … rhost=IP user=USER`, each also inside `message repeated N
//! times: [ … ]`. Anything else is left as it was.
//!
//! Sets `details.username`, `details.sourceipaddress`, `details.sourceport` (a number),
//! `details.authmethod`, `details.success` (for outcomes), `details.result` (`accepted`,
//! `failed`, `invalid user`, `disconnected`, `connection closed`, `session opened`, …),
//! `details.invaliduser` and, for a public key, `details.keytype` and
//! `details.keyfingerprint`; `category` `authentication` (outcomes) or `session`; tag
//! `sshd`.

use super::fields::{PARSER_PRIORITY, add_tag, details, is_ip, number_or_text, set_text, text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Options of the `sshd` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshdConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    vec!["sshd".to_string()]
}

impl SshdConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `sshd` plugin: see the module docs.
#[derive(Debug)]
pub struct SshdPlugin;

impl SshdPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: SshdConfig) -> SshdPlugin {
        SshdPlugin
    }
}

impl Plugin for SshdPlugin {
    fn name(&self) -> &str {
        "sshd"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let Some(parsed) = text(event.doc, "summary").and_then(parse) else { return Verdict::Keep };
        let doc = &mut *event.doc;
        set_text(doc, "category", parsed.category);
        add_tag(doc, "sshd");
        let d = details(doc);
        for (k, v) in parsed.fields {
            d.insert(k.to_string(), v);
        }
        Verdict::Keep
    }
}

/// What one line says.
#[derive(Debug, Default, PartialEq)]
struct Parsed {
    category: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl Parsed {
    fn new(category: &'static str, result: &str) -> Parsed {
        Parsed { category, fields: vec![("result", Value::String(result.to_string()))] }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Parsed {
        self.fields.push((key, value.into()));
        self
    }

    fn success(self, ok: bool) -> Parsed {
        self.with("success", ok)
    }

    /// Adds `[invalid user ]USER`: the user name and whether sshd called it invalid.
    fn user(self, who: &str) -> Parsed {
        let (invalid, name) = strip_user_kind(who);
        let p = if invalid { self.with("invaliduser", true) } else { self };
        p.with("username", name)
    }

    /// Adds `IP port N` (or `IP` alone).
    fn peer(mut self, ip: &str, port: Option<&str>) -> Parsed {
        if is_ip(ip) {
            self = self.with("sourceipaddress", ip);
        }
        match port {
            Some(p) => self.with("sourceport", number_or_text(p)),
            None => self,
        }
    }
}

/// `invalid user bob` → (true, bob); `authenticating user root` → (false, root);
/// `user alice` → (false, alice).
fn strip_user_kind(who: &str) -> (bool, &str) {
    if let Some(n) = who.strip_prefix("invalid user ") {
        (true, n)
    } else if let Some(n) = who.strip_prefix("authenticating user ") {
        (false, n)
    } else if let Some(n) = who.strip_prefix("user ") {
        (false, n)
    } else {
        (false, who)
    }
}

fn parse(line: &str) -> Option<Parsed> {
    let mut line = line.trim();
    // journald and rsyslog fold repeats: `message repeated 2 times: [ Failed password … ]`.
    if let Some(rest) = line.strip_prefix("message repeated ") {
        let (_, inner) = rest.split_once(": [")?;
        line = inner.trim().trim_end_matches(']').trim();
    }
    let preauth = line.ends_with("[preauth]");
    let line = line.trim_end_matches("[preauth]").trim_end();
    let parsed = if let Some(rest) = line.strip_prefix("Accepted ") {
        let (method, who, peer) = method_user_peer(rest)?;
        let p = Parsed::new("authentication", "accepted").success(true).with("authmethod", method).user(who);
        with_peer_and_key(p, peer)?
    } else if let Some(rest) = line.strip_prefix("Failed ") {
        let (method, who, peer) = method_user_peer(rest)?;
        let p = Parsed::new("authentication", "failed").success(false).with("authmethod", method).user(who);
        with_peer_and_key(p, peer)?
    } else if let Some(rest) = line.strip_prefix("Invalid user ") {
        let (who, peer) = rest.rsplit_once(" from ")?;
        let (ip, port) = ip_port(peer)?;
        Parsed::new("authentication", "invalid user").success(false).with("invaliduser", true).with("username", who).peer(ip, port)
    } else if let Some(rest) = line.strip_prefix("error: maximum authentication attempts exceeded for ") {
        let (who, peer) = rest.rsplit_once(" from ")?;
        let (ip, port) = ip_port(peer)?;
        Parsed::new("authentication", "maximum attempts exceeded").success(false).user(who).peer(ip, port)
    } else if let Some(rest) = line.strip_prefix("Disconnected from ") {
        closed("disconnected", rest)?
    } else if let Some(rest) = line.strip_prefix("Connection closed by ") {
        closed("connection closed", rest)?
    } else if let Some(rest) = line.strip_prefix("Received disconnect from ") {
        // `IP port N:11: Bye Bye`
        let (ip, rest) = rest.split_once(' ')?;
        let rest = rest.strip_prefix("port ")?;
        let (port, reason) = rest.split_once(':').unwrap_or((rest, ""));
        let reason = reason.split_once(':').map_or(reason, |(_, r)| r).trim();
        let p = Parsed::new("session", "disconnected").peer(ip, Some(port));
        if reason.is_empty() {
            p
        } else {
            p.with("reason", reason)
        }
    } else if let Some(rest) = line.strip_prefix("pam_unix(sshd:session): session ") {
        let (state, rest) = rest.split_once(" for user ")?;
        let user = rest.split(['(', ' ']).next().unwrap_or(rest);
        let result = match state {
            "opened" => "session opened",
            "closed" => "session closed",
            _ => return None,
        };
        Parsed::new("session", result).with("username", user)
    } else if let Some(rest) = line.strip_prefix("pam_unix(sshd:auth): authentication failure;") {
        let mut p = Parsed::new("authentication", "authentication failure").success(false);
        for (k, v, _) in super::fields::key_values(rest) {
            match k {
                "user" if !v.is_empty() => p = p.with("username", v),
                "rhost" if is_ip(v) => p = p.with("sourceipaddress", v),
                "rhost" if !v.is_empty() => p = p.with("sourcehostname", v),
                _ => {}
            }
        }
        p
    } else {
        return None;
    };
    Some(if preauth { parsed.with("preauth", true) } else { parsed })
}

/// `password for [invalid user ]USER from IP port N ssh2…` → (method, who, `IP port N ssh2…`).
fn method_user_peer(rest: &str) -> Option<(&str, &str, &str)> {
    let (method, rest) = rest.split_once(" for ")?;
    let (who, peer) = rest.rsplit_once(" from ")?;
    if method.contains(' ') || who.is_empty() {
        return None;
    }
    Some((method, who, peer))
}

/// `IP port N ssh2: RSA SHA256:…` → peer fields and the key's type and fingerprint.
fn with_peer_and_key(p: Parsed, peer: &str) -> Option<Parsed> {
    let (addr, key) = peer.split_once(": ").unwrap_or((peer, ""));
    let mut words = addr.split_whitespace();
    let ip = words.next()?;
    let port = match words.next() {
        Some("port") => Some(words.next()?),
        _ => None,
    };
    if !is_ip(ip) {
        return None;
    }
    let mut p = p.peer(ip, port);
    if let Some(proto) = words.next() {
        p = p.with("protocol", proto);
    }
    if let Some((kind, fingerprint)) = key.trim().split_once(' ') {
        p = p.with("keytype", kind).with("keyfingerprint", fingerprint.trim());
    }
    Some(p)
}

/// `IP port N` or `IP`.
fn ip_port(s: &str) -> Option<(&str, Option<&str>)> {
    let mut words = s.split_whitespace();
    let ip = words.next()?;
    if !is_ip(ip) {
        return None;
    }
    match (words.next(), words.next()) {
        (Some("port"), Some(port)) => Some((ip, Some(port))),
        _ => Some((ip, None)),
    }
}

/// `[authenticating |invalid ]user USER IP port N` or `IP port N`.
fn closed(result: &str, rest: &str) -> Option<Parsed> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    // The peer is the last `IP port N`; anything before it names the user.
    let n = words.len();
    if n < 3 || words[n - 2] != "port" || !is_ip(words[n - 3]) {
        return None;
    }
    let (ip, port) = (words[n - 3], words[n - 1]);
    let p = Parsed::new("session", result);
    let p = if n > 3 {
        let who = words[..n - 3].join(" ");
        let (invalid, name) = strip_user_kind(&who);
        let p = if invalid { p.with("invaliduser", true) } else { p };
        p.with("username", name)
    } else {
        p
    };
    Some(p.peer(ip, Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::process;
    use crate::plugins::Route;
    use serde_json::{json, Map};

    fn run(summary: &str) -> Map<String, Value> {
        let doc = json!({"summary": summary, "processname": "sshd", "category": "syslog", "tags": [], "details": {"syslog": {"facility": "auth"}}});
        let (v, doc, route) = process(&SshdPlugin::new(SshdConfig::default()), doc);
        assert_eq!(v, Verdict::Keep);
        assert_eq!(route, Route::default());
        doc
    }

    #[test]
    fn accepted_publickey_with_key_fingerprint() {
        let d = run("Accepted publickey for alice from 203.0.113.45 port 52144 ssh2: ED25519 SHA256:Qm9iIGlzIGEgZmluZSBrZXkgZm9yIHRlc3Rz");
        assert_eq!(d["category"], "authentication");
        assert_eq!(d["tags"], json!(["sshd"]));
        let det = &d["details"];
        assert_eq!(det["username"], "alice");
        assert_eq!(det["sourceipaddress"], "203.0.113.45");
        assert_eq!(det["sourceport"], 52144);
        assert_eq!(det["authmethod"], "publickey");
        assert_eq!(det["success"], true);
        assert_eq!(det["result"], "accepted");
        assert_eq!(det["keytype"], "ED25519");
        assert_eq!(det["keyfingerprint"], "SHA256:Qm9iIGlzIGEgZmluZSBrZXkgZm9yIHRlc3Rz");
        assert_eq!(det["syslog"]["facility"], "auth", "what was in details stays");
    }

    #[test]
    fn failed_password_for_invalid_user_and_ipv6() {
        let d = run("Failed password for invalid user oracle from 2001:db8::17 port 40022 ssh2");
        let det = &d["details"];
        assert_eq!(det["username"], "oracle");
        assert_eq!(det["invaliduser"], true);
        assert_eq!(det["sourceipaddress"], "2001:db8::17");
        assert_eq!(det["sourceport"], 40022);
        assert_eq!(det["authmethod"], "password");
        assert_eq!(det["success"], false);
        assert_eq!(det["result"], "failed");

        let d = run("Failed keyboard-interactive/pam for root from 198.51.100.23 port 61001 ssh2");
        assert_eq!(d["details"]["authmethod"], "keyboard-interactive/pam");
        assert_eq!(d["details"]["username"], "root");
        assert!(d["details"].get("invaliduser").is_none());
    }

    #[test]
    fn repeated_and_invalid_user_and_max_attempts() {
        let d = run("message repeated 2 times: [ Failed password for root from 198.51.100.23 port 61001 ssh2]");
        assert_eq!(d["details"]["username"], "root");
        assert_eq!(d["details"]["success"], false);

        let d = run("Invalid user admin from 192.0.2.200 port 50322");
        assert_eq!(d["details"]["result"], "invalid user");
        assert_eq!(d["details"]["username"], "admin");
        assert_eq!(d["details"]["sourceport"], 50322);
        let d = run("Invalid user test from 192.0.2.200");
        assert_eq!(d["details"]["sourceipaddress"], "192.0.2.200");
        assert!(d["details"].get("sourceport").is_none());

        let d = run("error: maximum authentication attempts exceeded for invalid user pi from 192.0.2.9 port 3312 ssh2 [preauth]");
        assert_eq!(d["details"]["username"], "pi");
        assert_eq!(d["details"]["invaliduser"], true);
        assert_eq!(d["details"]["preauth"], true);
    }

    #[test]
    fn disconnects_and_sessions() {
        let d = run("Disconnected from authenticating user root 192.0.2.9 port 3312 [preauth]");
        assert_eq!(d["category"], "session");
        assert_eq!(d["details"]["result"], "disconnected");
        assert_eq!(d["details"]["username"], "root");
        assert_eq!(d["details"]["sourceport"], 3312);
        assert_eq!(d["details"]["preauth"], true);
        assert!(d["details"].get("success").is_none(), "a disconnect is not an auth outcome");

        let d = run("Connection closed by 192.0.2.9 port 3312 [preauth]");
        assert_eq!(d["details"]["result"], "connection closed");
        assert!(d["details"].get("username").is_none());

        let d = run("Received disconnect from 203.0.113.45 port 52144:11: disconnected by user");
        assert_eq!(d["details"]["reason"], "disconnected by user");
        assert_eq!(d["details"]["sourceport"], 52144);

        let d = run("pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)");
        assert_eq!(d["details"]["result"], "session opened");
        assert_eq!(d["details"]["username"], "alice");

        let d = run("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.9  user=root");
        assert_eq!(d["details"]["username"], "root");
        assert_eq!(d["details"]["sourceipaddress"], "192.0.2.9");
        assert_eq!(d["details"]["success"], false);
    }

    #[test]
    fn other_sshd_lines_are_left_alone() {
        for line in [
            "Server listening on 0.0.0.0 port 22.",
            "Received signal 15; terminating.",
            "Accepted publickey for alice from not-an-ip port 22 ssh2",
            "Failed password",
            "Connection closed by authenticating user root",
            "Disconnected from host.example.com port 22",
            "pam_unix(sshd:session): session reopened for user alice",
            "",
        ] {
            let d = run(line);
            assert_eq!(d["category"], "syslog", "{line}");
            assert_eq!(d["tags"], json!([]), "{line}");
            assert_eq!(d["details"], json!({"syslog": {"facility": "auth"}}), "{line}");
        }
    }

    #[test]
    fn options_parse_strictly_and_validate() {
        let c: SshdConfig = serde_json::from_value(json!({})).unwrap();
        assert!(c.validate().is_empty());
        let p = SshdPlugin::new(c);
        assert_eq!((&p.terms()[..], p.priority()), (&["sshd".to_string()][..], 7));
        assert!(serde_json::from_value::<SshdConfig>(json!({"prio": 5})).is_err());
    }
}
