//! `ipfixup`: MozDef's IP fix-up. It gathers source and destination addresses into
//! `details.sourceipaddress` / `details.destinationipaddress` (from the top level and from
//! common aliases such as `srcip`, `dst_ip`), normalizes them (trims, drops brackets and a
//! `:port`, writes the canonical form, an IPv4-mapped IPv6 address as IPv4), moves a value
//! that is not an address to `…_invalid` (never losing it), and classes each address in
//! `details.sourceipaddress_class` (`public`, `private`, `loopback`, `link_local`,
//! `multicast`, `shared`, `documentation`, `unspecified` or `reserved`).

use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `type: ipfixup` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IpFixupConfig {
    /// Write the `…_class` fields. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub classify: bool,
}

fn yes() -> bool {
    true
}

impl IpFixupConfig {
    /// Every problem (none possible today).
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

const SOURCE_ALIASES: &[&str] = &["srcip", "src_ip", "sourceip", "source_ip", "src_addr", "sourceipv4address"];
const DEST_ALIASES: &[&str] = &["dstip", "dst_ip", "destip", "dest_ip", "destinationip", "dst_addr", "destinationipv4address"];

/// The plugin.
#[derive(Debug)]
pub struct IpFixup {
    cfg: IpFixupConfig,
    terms: Vec<String>,
}

impl IpFixup {
    /// The plugin with its options.
    pub fn new(cfg: IpFixupConfig) -> IpFixup {
        let terms = ["sourceipaddress", "destinationipaddress"].iter().chain(SOURCE_ALIASES).chain(DEST_ALIASES).map(|s| s.to_string()).collect();
        IpFixup { cfg, terms }
    }
}

impl Plugin for IpFixup {
    fn name(&self) -> &str {
        "ipfixup"
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        10
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        for (field, aliases) in [("sourceipaddress", SOURCE_ALIASES), ("destinationipaddress", DEST_ALIASES)] {
            // The top level value moves into details (MozDef's schema keeps it there).
            let top = e.doc.remove(field);
            let Some(details) = details_mut(e.doc) else { return Verdict::Keep };
            if let Some(v) = top {
                details.entry(field.to_string()).or_insert(v);
            }
            if !details.contains_key(field) {
                if let Some(alias) = aliases.iter().find(|a| details.get(**a).is_some_and(Value::is_string)) {
                    if let Some(v) = details.remove(*alias) {
                        details.insert(field.to_string(), v);
                    }
                }
            }
            let Some(raw) = details.get(field) else { continue };
            let text = match raw {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match parse_ip(&text) {
                Some(ip) => {
                    details.insert(field.to_string(), Value::String(ip.to_string()));
                    if self.cfg.classify {
                        details.insert(format!("{field}_class"), Value::String(classify(ip).to_string()));
                    }
                }
                None => {
                    if let Some(v) = details.remove(field) {
                        details.insert(format!("{field}_invalid"), v);
                    }
                }
            }
        }
        Verdict::Keep
    }
}

/// `details`, created (or, when it is not an object, replaced by one that keeps the old value
/// under `details_original`) as needed.
pub(crate) fn details_mut(doc: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    if !doc.get("details").is_some_and(Value::is_object) {
        let mut m = Map::new();
        if let Some(old) = doc.remove("details").filter(|v| !v.is_null()) {
            m.insert("details_original".into(), old);
        }
        doc.insert("details".into(), Value::Object(m));
    }
    doc.get_mut("details").and_then(Value::as_object_mut)
}

/// An address from text as loggers write it: `1.2.3.4`, ` 1.2.3.4 `, `1.2.3.4:22`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`, `::ffff:1.2.3.4` (as IPv4).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    let ip = if let Ok(ip) = t.parse::<IpAddr>() {
        ip
    } else if let Some(rest) = t.strip_prefix('[') {
        rest.split(']').next()?.parse().ok()?
    } else if let Some((host, port)) = t.rsplit_once(':') {
        if !port.chars().all(|c| c.is_ascii_digit()) || port.is_empty() {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    } else {
        return None;
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

/// The address's range: `public` or the special-purpose block it is in.
pub fn classify(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(a: Ipv4Addr) -> &'static str {
    let o = a.octets();
    if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if a.is_private() {
        "private"
    } else if a.is_link_local() {
        "link_local"
    } else if a.is_multicast() {
        "multicast"
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        "shared"
    } else if a.is_documentation() {
        "documentation"
    } else if o[0] == 0 || o[0] >= 240 || (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        "reserved"
    } else {
        "public"
    }
}

fn classify_v6(a: Ipv6Addr) -> &'static str {
    let s = a.segments();
    if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "private"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link_local"
    } else if a.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if (s[0] & 0xe000) != 0x2000 {
        "reserved"
    } else {
        "public"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use serde_json::json;

    fn run(v: Value) -> Map<String, Value> {
        kept(&IpFixup::new(IpFixupConfig { classify: true }), v)
    }

    #[test]
    fn normalizes_moves_and_classes_addresses() {
        // An sshd line's fields as a shipper sends them, with a port glued on and an alias.
        let d = run(json!({"summary": "Accepted publickey for alice from 203.0.113.9 port 50022 ssh2", "sourceipaddress": " 8.8.8.8:50022 ", "details": {"dst_ip": "[::ffff:10.1.2.3]"}}));
        assert!(d.get("sourceipaddress").is_none());
        assert_eq!(d["details"]["sourceipaddress"], "8.8.8.8");
        assert_eq!(d["details"]["sourceipaddress_class"], "public");
        assert_eq!(d["details"]["destinationipaddress"], "10.1.2.3");
        assert_eq!(d["details"]["destinationipaddress_class"], "private");
        assert!(d["details"].get("dst_ip").is_none());
    }

    #[test]
    fn bad_addresses_are_kept_aside_not_lost() {
        let d = run(json!({"details": {"sourceipaddress": "999.1.1.1", "destinationipaddress": "2001:db8::1"}}));
        assert!(d["details"].get("sourceipaddress").is_none());
        assert_eq!(d["details"]["sourceipaddress_invalid"], "999.1.1.1");
        assert_eq!(d["details"]["destinationipaddress_class"], "documentation");
    }

    #[test]
    fn classes() {
        for (ip, class) in [("127.0.0.1", "loopback"), ("169.254.1.1", "link_local"), ("100.64.0.1", "shared"), ("240.0.0.1", "reserved"), ("fd00::1", "private"), ("fe80::1", "link_local"), ("2a00:1450::1", "public"), ("224.0.0.1", "multicast"), ("1.1.1.1", "public")] {
            assert_eq!(classify(parse_ip(ip).unwrap()), class, "{ip}");
        }
        assert!(parse_ip("1.2.3.4:abc").is_none() && parse_ip("host.example").is_none());
    }
}
