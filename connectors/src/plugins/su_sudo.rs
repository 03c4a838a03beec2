//! `su_sudo`: reads `su` and `sudo` log lines (the `summary` of an event whose
//! `processname` is `su` or `sudo`) into who became whom, running what.
//!
//! Understood: PAM's `pam_unix(su|su-l|sudo|sudo-i:session): session opened for user
//! TARGET[(uid=N)] by ORIGINAL(uid=N)` and `session closed for user TARGET`, PAM's
//! `pam_unix(…:auth): authentication failure; logname=… ruser=… user=…`; util-linux su's
//! `(to TARGET) ORIGINAL on TTY` and `FAILED SU (to TARGET) ORIGINAL on TTY`; shadow su's
//! `Successful su for TARGET by ORIGINAL` and `FAILED su for TARGET by ORIGINAL`; sudo's
//! `ORIGINAL : [REASON ; ]TTY=… ; PWD=… ; USER=TARGET ; [ENV=… ; ]COMMAND=…` (a reason such
//! as `3 incorrect password attempts` or `user NOT in sudoers` marks a refusal). Anything else
//! is left as it was.
//!
//! Sets `details.originaluser`, `details.targetuser`, `details.command`, `details.tty`,
//! `details.workingdirectory`, `details.success`, `details.result`, `details.reason`,
//! `details.attempts`; `category` `authentication` (su, PAM) or `authorization` (sudo's
//! policy decisions); tag `su` or `sudo`.

use super::fields::{PARSER_PRIORITY, add_tag, details, key_values, number_or_text, set_text, text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Options of the `su_sudo` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SuSudoConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    vec!["su".to_string(), "sudo".to_string()]
}

impl SuSudoConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `su_sudo` plugin: see the module docs.
#[derive(Debug)]
pub struct SuSudoPlugin;

impl SuSudoPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: SuSudoConfig) -> SuSudoPlugin {
        SuSudoPlugin
    }
}

impl Plugin for SuSudoPlugin {
    fn name(&self) -> &str {
        "su_sudo"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let process = text(event.doc, "processname").unwrap_or("");
        let Some(p) = text(event.doc, "summary").and_then(|s| parse(s, process)) else { return Verdict::Keep };
        let doc = &mut *event.doc;
        set_text(doc, "category", p.category);
        add_tag(doc, p.tool);
        let d = details(doc);
        for (k, v) in p.fields {
            d.insert(k.to_string(), v);
        }
        Verdict::Keep
    }
}

#[derive(Debug)]
struct Parsed {
    tool: &'static str,
    category: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl Parsed {
    fn new(tool: &'static str, category: &'static str, result: &str, success: Option<bool>) -> Parsed {
        let mut fields = vec![("result", Value::from(result))];
        if let Some(ok) = success {
            fields.push(("success", Value::from(ok)));
        }
        Parsed { tool, category, fields }
    }

    fn with(mut self, key: &'static str, value: &str) -> Parsed {
        if !value.is_empty() {
            self.fields.push((key, Value::from(value)));
        }
        self
    }
}

fn tool_of(service: &str) -> Option<&'static str> {
    match service {
        "su" | "su-l" => Some("su"),
        "sudo" | "sudo-i" => Some("sudo"),
        _ => None,
    }
}

/// `alice(uid=1000)` → `alice`.
fn user_name(s: &str) -> &str {
    s.split('(').next().unwrap_or(s).trim()
}

fn parse(line: &str, process: &str) -> Option<Parsed> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("pam_unix(") {
        let (service, rest) = rest.split_once(':')?;
        let tool = tool_of(service)?;
        if let Some(rest) = rest.strip_prefix("session): session opened for user ") {
            let (target, original) = match rest.split_once(" by ") {
                Some((t, o)) => (user_name(t), user_name(o)),
                None => (user_name(rest), ""),
            };
            return Some(Parsed::new(tool, "authentication", "session opened", Some(true)).with("targetuser", target).with("originaluser", original));
        }
        if let Some(rest) = rest.strip_prefix("session): session closed for user ") {
            return Some(Parsed::new(tool, "authentication", "session closed", None).with("targetuser", user_name(rest)));
        }
        let rest = rest.strip_prefix("auth): authentication failure;")?;
        let mut p = Parsed::new(tool, "authentication", "authentication failure", Some(false));
        let (mut ruser, mut logname, mut user, mut tty) = ("", "", "", "");
        for (k, v, _) in key_values(rest) {
            match k {
                "ruser" => ruser = v,
                "logname" => logname = v,
                "user" => user = v,
                "tty" => tty = v,
                _ => {}
            }
        }
        let original = if ruser.is_empty() { logname } else { ruser };
        p = p.with("originaluser", original).with("tty", tty);
        // su's `user=` is who it tried to become; sudo's is who had to type a password.
        if tool == "su" {
            p = p.with("targetuser", user);
        } else if original.is_empty() {
            p = p.with("originaluser", user);
        }
        return Some(p);
    }
    if let Some(rest) = line.strip_prefix("FAILED SU (to ") {
        return su_to(rest, "failed", false);
    }
    if let Some(rest) = line.strip_prefix("(to ") {
        return su_to(rest, "accepted", true);
    }
    if let Some(rest) = line.strip_prefix("Successful su for ") {
        let (target, original) = rest.split_once(" by ")?;
        return Some(Parsed::new("su", "authentication", "accepted", Some(true)).with("targetuser", target).with("originaluser", original.trim()));
    }
    if let Some(rest) = line.strip_prefix("FAILED su for ") {
        let (target, original) = rest.split_once(" by ")?;
        return Some(Parsed::new("su", "authentication", "failed", Some(false)).with("targetuser", target).with("originaluser", original.trim()));
    }
    if process == "sudo" || line.contains(" ; COMMAND=") || line.contains(" ; USER=") {
        return sudo_command(line);
    }
    None
}

/// `root) alice on pts/0`
fn su_to(rest: &str, result: &str, ok: bool) -> Option<Parsed> {
    let (target, rest) = rest.split_once(") ")?;
    let (original, tty) = rest.split_once(" on ").unwrap_or((rest, ""));
    if target.is_empty() || original.trim().is_empty() || original.contains(' ') {
        return None;
    }
    Some(Parsed::new("su", "authentication", result, Some(ok)).with("targetuser", target).with("originaluser", original).with("tty", tty.trim()))
}

/// `alice : [REASON ; ]TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls -la`
fn sudo_command(line: &str) -> Option<Parsed> {
    let (user, rest) = line.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    // COMMAND is last and may itself hold ` ; `: take it whole first.
    let (head, command) = match rest.split_once("COMMAND=") {
        Some((h, c)) => (h, c.trim()),
        None => (rest, ""),
    };
    let mut reason = "";
    let (mut tty, mut pwd, mut target) = ("", "", "");
    let mut any = false;
    for part in head.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("TTY", v)) => tty = v,
            Some(("PWD", v)) => pwd = v,
            Some(("USER", v)) => target = v,
            Some(_) => {}
            None if !any && reason.is_empty() => reason = part,
            None => {}
        }
        any = true;
    }
    if target.is_empty() && command.is_empty() {
        return None;
    }
    let (result, ok) = if reason.is_empty() { ("accepted", true) } else { ("refused", false) };
    let mut p = Parsed::new("sudo", "authorization", result, Some(ok))
        .with("originaluser", user)
        .with("targetuser", target)
        .with("command", command)
        .with("tty", tty)
        .with("workingdirectory", pwd)
        .with("reason", reason);
    if let Some(n) = reason.strip_suffix(" incorrect password attempts").or_else(|| reason.strip_suffix(" incorrect password attempt")) {
        p.fields.push(("attempts", number_or_text(n)));
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use serde_json::{json, Map};

    fn run(process: &str, summary: &str) -> Map<String, Value> {
        kept(&SuSudoPlugin::new(SuSudoConfig::default()), json!({"summary": summary, "processname": process, "category": "syslog", "tags": [], "details": {}}))
    }

    #[test]
    fn su_sessions_and_failures() {
        let d = run("su", "pam_unix(su:session): session opened for user root by alice(uid=1000)");
        assert_eq!(d["category"], "authentication");
        assert_eq!(d["tags"], json!(["su"]));
        assert_eq!(d["details"], json!({"result": "session opened", "success": true, "targetuser": "root", "originaluser": "alice"}));

        let d = run("su", "pam_unix(su-l:session): session opened for user postgres(uid=114) by alice(uid=1000)");
        assert_eq!(d["details"]["targetuser"], "postgres");
        assert_eq!(d["details"]["originaluser"], "alice");

        let d = run("su", "pam_unix(su:session): session closed for user root");
        assert_eq!(d["details"]["result"], "session closed");

        let d = run("su", "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=root");
        assert_eq!(d["details"]["success"], false);
        assert_eq!(d["details"]["originaluser"], "alice");
        assert_eq!(d["details"]["targetuser"], "root");
        assert_eq!(d["details"]["tty"], "/dev/pts/0");

        let d = run("su", "FAILED SU (to root) alice on pts/2");
        assert_eq!(d["details"], json!({"result": "failed", "success": false, "targetuser": "root", "originaluser": "alice", "tty": "pts/2"}));
        let d = run("su", "(to root) alice on pts/2");
        assert_eq!(d["details"]["success"], true);
        let d = run("su", "Successful su for root by alice");
        assert_eq!(d["details"]["originaluser"], "alice");
        let d = run("su", "FAILED su for root by mallory");
        assert_eq!(d["details"]["success"], false);
    }

    #[test]
    fn sudo_commands_refusals_and_pam() {
        let d = run("sudo", "    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx");
        assert_eq!(d["category"], "authorization");
        assert_eq!(d["tags"], json!(["sudo"]));
        let det = &d["details"];
        assert_eq!(det["originaluser"], "alice");
        assert_eq!(det["targetuser"], "root");
        assert_eq!(det["command"], "/usr/bin/systemctl restart nginx");
        assert_eq!(det["tty"], "pts/0");
        assert_eq!(det["workingdirectory"], "/home/alice");
        assert_eq!(det["success"], true);

        let d = run("sudo", "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update");
        assert_eq!(d["details"]["success"], false);
        assert_eq!(d["details"]["result"], "refused");
        assert_eq!(d["details"]["attempts"], 3);
        assert_eq!(d["details"]["command"], "/usr/bin/apt update");

        let d = run("sudo", "bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash");
        assert_eq!(d["details"]["reason"], "user NOT in sudoers");
        assert_eq!(d["details"]["success"], false);

        let d = run("sudo", "deploy : TTY=unknown ; PWD=/srv/app ; USER=root ; ENV=PATH=/usr/bin ; COMMAND=/bin/sh -c 'echo a ; echo b'");
        assert_eq!(d["details"]["command"], "/bin/sh -c 'echo a ; echo b'");

        let d = run("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)");
        assert_eq!(d["details"]["targetuser"], "root");
        assert_eq!(d["tags"], json!(["sudo"]));
        let d = run("sudo", "pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice");
        assert_eq!(d["details"]["originaluser"], "alice");
        assert!(d["details"].get("targetuser").is_none());
    }

    #[test]
    fn other_lines_are_left_alone() {
        for (process, line) in [
            ("sudo", "pam_unix(sudo:auth): conversation failed"),
            ("sudo", "pam_unix(sudo:auth): auth could not identify password for [alice]"),
            ("sudo", "alice : a password is required"),
            ("su", "pam_unix(su:account): account root has expired"),
            ("su", "(to root) on pts/0"),
            ("sshd", "pam_unix(sshd:session): session opened for user alice by (uid=0)"),
            ("su", "Received signal 15"),
        ] {
            let d = run(process, line);
            assert_eq!(d["category"], "syslog", "{line}");
            assert_eq!(d["details"], json!({}), "{line}");
            assert_eq!(d["tags"], json!([]), "{line}");
        }
    }
}
