//! `auditd`: reads Linux audit records (`type=SYSCALL msg=audit(1700000000.123:456): …`, as
//! auditd's syslog plugin, audispd or the kernel print them) into `details`.
//!
//! Every `key=value` pair lands in `details` under its own name. Quoted values are taken as
//! they are; an unquoted value of a field auditd hex-encodes when it holds spaces or control
//! characters (`comm`, `exe`, `cwd`, `name`, `proctitle`, `key`, `acct`, EXECVE's `a0`…) is
//! decoded (NULs become spaces). The nested `msg='op=login … res=success'` of user-space
//! records is read into the same `details`. auditd's enriched fields (after a `0x1d`
//! separator: `ARCH=x86_64 SYSCALL=execve AUID="alice"`) land as `<name>_text`
//! (`syscall_text`, `auid_text`).
//!
//! Also sets `details.audittype`, `details.audittimestamp` (the record's own time,
//! ISO-8601 UTC with milliseconds), `details.auditserial` (a number: records of one event
//! share it), `details.success` (from `success=yes|no` or `res=success|failed`),
//! `details.command` (EXECVE's arguments or the decoded `proctitle`), `details.username`,
//! `details.sourceipaddress` (a login's `addr`), `details.processname` (`comm`);
//! `category` `execve`, `authentication` (user-space login and credential records) or
//! `auditd`; tag `auditd`. Text that is not an audit record is left as it was.

use super::fields::{PARSER_PRIORITY, add_tag, decode_hex, details, is_ip, key_values, set_text, text};
use super::{Plugin, PluginEvent, Verdict};
use rampart_core::EventTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Options of the `auditd` plugin.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditdConfig {
    /// Most EXECVE arguments joined into `details.command`; the rest are dropped from the
    /// command (they stay as `a<N>` fields). Default 64.
    #[serde(default = "default_max_args", deserialize_with = "crate::registry::lenient")]
    pub max_args: usize,
}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["auditd", "audispd", "audisp-syslog", "audit", "kernel"].map(String::from).to_vec()
}

fn default_max_args() -> usize {
    64
}

impl Default for AuditdConfig {
    fn default() -> Self {
        AuditdConfig { max_args: default_max_args() }
    }
}

impl AuditdConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_args == 0 {
            problems.push("auditd: max_args is 0: EXECVE records would get an empty command (the default is 64)".to_string());
        }
        problems
    }
}

/// The `auditd` plugin: see the module docs.
#[derive(Debug)]
pub struct AuditdPlugin {
    max_args: usize,
}

impl AuditdPlugin {
    /// A plugin with these options.
    pub fn new(cfg: AuditdConfig) -> AuditdPlugin {
        AuditdPlugin { max_args: cfg.max_args }
    }
}

/// Fields auditd prints hex-encoded (unquoted) when the value is untrusted text.
const ENCODED: &[&str] = &["comm", "exe", "cwd", "name", "path", "proctitle", "key", "acct", "data", "cmd", "ocomm", "dir", "file", "grp", "new-chardev", "old-chardev", "root_dir", "sw"];

/// User-space record types about logging in and credentials.
const AUTH_TYPES: &[&str] = &["USER_LOGIN", "USER_AUTH", "USER_ACCT", "USER_ERR", "USER_START", "USER_END", "CRED_ACQ", "CRED_DISP", "CRED_REFR", "ANOM_LOGIN_FAILURES", "USER_LOGOUT"];

impl Plugin for AuditdPlugin {
    fn name(&self) -> &str {
        "auditd"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let Some(record) = text(event.doc, "summary").and_then(|s| self.parse(s)) else { return Verdict::Keep };
        let category = match record.get("audittype").and_then(Value::as_str) {
            Some("EXECVE") => "execve",
            Some(t) if AUTH_TYPES.contains(&t) => "authentication",
            _ => "auditd",
        };
        let doc = &mut *event.doc;
        set_text(doc, "category", category);
        add_tag(doc, "auditd");
        details(doc).extend(record);
        Verdict::Keep
    }
}

impl AuditdPlugin {
    /// The record's fields, or `None` when `line` is not an audit record.
    fn parse(&self, line: &str) -> Option<Map<String, Value>> {
        let mut line = line.trim();
        line = line.strip_prefix("audit: ").unwrap_or(line);
        // `node=web1 type=…` when auditd is told to name the node.
        let (node, body) = match line.strip_prefix("node=") {
            Some(rest) => {
                let (n, b) = rest.split_once(' ')?;
                (Some(n), b)
            }
            None => (None, line),
        };
        if !body.starts_with("type=") {
            return None;
        }
        let (raw, enriched) = body.split_once('\u{1d}').unwrap_or((body, ""));
        let mut out = Map::new();
        if let Some(n) = node {
            out.insert("node".into(), n.into());
        }
        let mut stamped = false;
        let pairs = key_values(raw);
        let audit_type = pairs.first().filter(|(k, _, _)| *k == "type").map(|(_, v, _)| *v)?;
        out.insert("audittype".into(), audit_type.into());
        let execve = audit_type == "EXECVE";
        for (k, v, quoted) in pairs.iter().skip(1).copied() {
            if k == "msg" && !quoted {
                stamped |= stamp(v, &mut out);
            } else if k == "msg" {
                // User-space records nest their own pairs: `msg='op=login acct="alice" res=success'`.
                for (k, v, quoted) in key_values(v) {
                    put(&mut out, k, v, quoted, false);
                }
            } else {
                put(&mut out, k, v, quoted, execve);
            }
        }
        // Kernel lines through syslog: `audit: type=1400 audit(1700000000.123:456): …`.
        if !stamped {
            let at = raw.find("audit(")?;
            let end = raw[at..].find(')')?;
            if !stamp(&raw[at..=at + end], &mut out) {
                return None;
            }
        }
        for (k, v, _) in key_values(enriched) {
            out.insert(format!("{}_text", k.to_lowercase()), v.into());
        }
        self.derive(&mut out);
        Some(out)
    }

    /// The convenience fields rules use across record types.
    fn derive(&self, out: &mut Map<String, Value>) {
        let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let success = match (get(out, "success").as_deref(), get(out, "res").as_deref()) {
            (Some("yes"), _) | (_, Some("success" | "1")) => Some(true),
            (Some("no"), _) | (_, Some("failed" | "0")) => Some(false),
            _ => None,
        };
        if let Some(ok) = success {
            out.insert("success".into(), ok.into());
        }
        if out.get("audittype").and_then(Value::as_str) == Some("EXECVE") {
            let argc = get(out, "argc").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
            let args: Vec<String> = (0..argc.min(self.max_args)).filter_map(|i| get(out, &format!("a{i}"))).collect();
            if !args.is_empty() {
                out.insert("command".into(), args.join(" ").into());
            }
        }
        if let Some(title) = get(out, "proctitle") {
            out.entry("command").or_insert(title.into());
        }
        if let Some(comm) = get(out, "comm") {
            out.insert("processname".into(), comm.into());
        }
        let user = get(out, "acct").or_else(|| get(out, "auid_text")).filter(|u| u != "?" && u != "unset");
        if let Some(u) = user {
            out.insert("username".into(), u.into());
        }
        if let Some(addr) = get(out, "addr").filter(|a| is_ip(a)) {
            out.insert("sourceipaddress".into(), addr.into());
        }
    }
}

/// One pair into the record, decoding auditd's hex where it applies.
fn put(out: &mut Map<String, Value>, key: &str, value: &str, quoted: bool, execve: bool) {
    let encoded = !quoted && (ENCODED.contains(&key) || (execve && is_arg(key)));
    let value = match encoded.then(|| decode_hex(value)).flatten() {
        Some(decoded) => decoded,
        None => value.to_string(),
    };
    out.insert(key.to_string(), value.into());
}

/// EXECVE's `a0`, `a1`, … (and `a1[0]` pieces of long arguments).
fn is_arg(key: &str) -> bool {
    key.strip_prefix('a').is_some_and(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
}

/// `audit(1700000000.123:456):` → `audittimestamp`, `auditserial`.
fn stamp(v: &str, out: &mut Map<String, Value>) -> bool {
    let Some(inner) = v.strip_prefix("audit(").and_then(|r| r.split(')').next()) else { return false };
    let Some((time, serial)) = inner.split_once(':') else { return false };
    let (Ok(secs), Ok(serial)) = (time.parse::<f64>(), serial.parse::<u64>()) else { return false };
    if !(0.0..1e11).contains(&secs) {
        return false;
    }
    let ms = (secs * 1000.0).round() as u64;
    out.insert("audittimestamp".into(), EventTime::from_millis(ms).to_rfc3339().into());
    out.insert("auditserial".into(), serial.into());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use serde_json::json;

    fn run(summary: &str) -> Map<String, Value> {
        kept(&AuditdPlugin::new(AuditdConfig::default()), json!({"summary": summary, "processname": "audispd", "category": "syslog", "tags": [], "details": {}}))
    }

    #[test]
    fn syscall_record_with_enriched_fields() {
        let d = run("type=SYSCALL msg=audit(1700000000.123:456): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1a2e4b0 a1=55d0c1a2e5d0 a2=55d0c1a2e6f0 a3=8 items=2 ppid=1834 pid=1901 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"ls\" exe=\"/usr/bin/ls\" subj=unconfined key=\"exec_watch\"\u{1d}ARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"root\"");
        assert_eq!(d["category"], "auditd");
        assert_eq!(d["tags"], json!(["auditd"]));
        let det = &d["details"];
        assert_eq!(det["audittype"], "SYSCALL");
        assert_eq!(det["audittimestamp"], "2023-11-14T22:13:20.123+00:00");
        assert_eq!(det["auditserial"], 456);
        assert_eq!(det["syscall"], "59");
        assert_eq!(det["syscall_text"], "execve");
        assert_eq!(det["success"], true);
        assert_eq!(det["exe"], "/usr/bin/ls");
        assert_eq!(det["key"], "exec_watch");
        assert_eq!(det["a0"], "55d0c1a2e4b0", "SYSCALL arguments are numbers, not encoded text");
        assert_eq!(det["processname"], "ls");
        assert_eq!(det["username"], "alice");
        assert_eq!(det["auid"], "1000");
    }

    #[test]
    fn execve_arguments_are_decoded_and_joined() {
        // a2 is hex because it holds a space: "/tmp/a b".
        let d = run("type=EXECVE msg=audit(1700000000.123:456): argc=3 a0=\"cat\" a1=\"-n\" a2=2F746D702F612062");
        assert_eq!(d["category"], "execve");
        assert_eq!(d["details"]["a2"], "/tmp/a b");
        assert_eq!(d["details"]["command"], "cat -n /tmp/a b");
        assert_eq!(d["details"]["auditserial"], 456);

        let d = run("node=db2 type=PROCTITLE msg=audit(1700000000.123:456): proctitle=7375646F002D69");
        assert_eq!(d["details"]["proctitle"], "sudo -i");
        assert_eq!(d["details"]["command"], "sudo -i");
        assert_eq!(d["details"]["node"], "db2");

        let d = run("type=PATH msg=audit(1700000000.123:456): item=0 name=2F746D702F6D792066696C65 inode=393 dev=08:01 mode=0100644 ouid=0 ogid=0 nametype=NORMAL");
        assert_eq!(d["details"]["name"], "/tmp/my file");
        assert_eq!(d["details"]["mode"], "0100644");
    }

    #[test]
    fn user_login_reads_the_nested_message() {
        let d = run("type=USER_LOGIN msg=audit(1700000100.500:789): pid=2211 uid=0 auid=1000 ses=5 subj=unconfined msg='op=login id=1000 exe=\"/usr/sbin/sshd\" hostname=203.0.113.45 addr=203.0.113.45 terminal=/dev/pts/1 res=success'");
        assert_eq!(d["category"], "authentication");
        let det = &d["details"];
        assert_eq!(det["op"], "login");
        assert_eq!(det["exe"], "/usr/sbin/sshd");
        assert_eq!(det["sourceipaddress"], "203.0.113.45");
        assert_eq!(det["success"], true);
        assert_eq!(det["audittimestamp"], "2023-11-14T22:15:00.500+00:00");

        let d = run("type=USER_AUTH msg=audit(1700000100.600:790): pid=2212 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=198.51.100.7 addr=198.51.100.7 terminal=ssh res=failed'");
        assert_eq!(d["details"]["username"], "root");
        assert_eq!(d["details"]["success"], false);

        // The kernel's own lines, through syslog.
        let d = run("audit: type=1400 audit(1700000200.001:12): apparmor=\"DENIED\" operation=\"open\" profile=\"/usr/sbin/cupsd\" name=\"/etc/shadow\" pid=812 comm=\"cupsd\" requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0");
        assert_eq!(d["details"]["audittype"], "1400");
        assert_eq!(d["details"]["apparmor"], "DENIED");
        assert_eq!(d["details"]["auditserial"], 12);
    }

    #[test]
    fn non_audit_lines_are_left_alone() {
        for line in [
            "Audit daemon rotating log files",
            "type=SYSCALL but no stamp here",
            "type=SYSCALL msg=audit(notatime:1): syscall=2",
            "audit: backlog limit exceeded",
            "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        ] {
            let d = run(line);
            assert_eq!(d["category"], "syslog", "{line}");
            assert_eq!(d["details"], json!({}), "{line}");
        }
    }

    #[test]
    fn options_validate() {
        assert_eq!(AuditdConfig { max_args: 0 }.validate().len(), 1);
        let c: AuditdConfig = serde_json::from_value(json!({"max_args": "8"})).unwrap();
        assert_eq!(c.max_args, 8);
    }
}
