//! Registration: the config file's `plugins:` entries and the one `match` that builds each
//! plugin. Every entry is a [`PluginConfig`] (`type: ipfixup | geoip | field_limit | drop |
//! enrich | vrl`, or a parser: `sshd | su_sudo | auditd | zeek | suricata | access_log |
//! cloudtrail | guardduty`; serde names the valid types in its error) plus the settings every plugin
//! has ([`PluginEntry`]): `name`, `enabled`, `priority`, `terms`. Adding a plugin is its file,
//! one variant, one arm in [`PluginConfig::validate`] and [`PluginConfig::build`], and its
//! section in `docs/plugins.md`.

use super::chain::{Chain, Registered, MAX_PLUGINS};
use super::drop::{DropConfig, DropFilter};
use super::enrich::{Enrich, EnrichConfig};
use super::fieldlimit::{FieldLimit, FieldLimitConfig};
use super::geoip::{GeoIp, GeoIpConfig};
use super::ipfixup::{IpFixup, IpFixupConfig};
use super::vrl::{Vrl, VrlConfig};
use super::access_log::{AccessLogConfig, AccessLogPlugin};
use super::auditd::{AuditdConfig, AuditdPlugin};
use super::cloudtrail::{CloudTrailConfig, CloudTrailPlugin};
use super::guardduty::{GuardDutyConfig, GuardDutyPlugin};
use super::sshd::{SshdConfig, SshdPlugin};
use super::su_sudo::{SuSudoConfig, SuSudoPlugin};
use super::suricata::{SuricataConfig, SuricataPlugin};
use super::zeek::{ZeekConfig, ZeekPlugin};
use super::{Plugin, PluginContext};
use crate::error::ConnectorError;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One plugin's own options, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PluginConfig {
    /// Normalize and classify source/destination addresses.
    Ipfixup(IpFixupConfig),
    /// MaxMind City lookups for public addresses.
    Geoip(GeoIpConfig),
    /// Cut huge strings.
    FieldLimit(FieldLimitConfig),
    /// Drop noise by field match or Sigma rule.
    Drop(DropConfig),
    /// Add lookup table rows or CIDR list membership.
    Enrich(EnrichConfig),
    /// A user script in VRL.
    Vrl(VrlConfig),
    /// OpenSSH log lines into authentication fields.
    Sshd(SshdConfig),
    /// su and sudo log lines: who became whom, running what.
    SuSudo(SuSudoConfig),
    /// Linux audit records into `details`.
    Auditd(AuditdConfig),
    /// Zeek/Bro JSON logs.
    Zeek(ZeekConfig),
    /// Suricata EVE JSON.
    Suricata(SuricataConfig),
    /// nginx/Apache access log lines.
    AccessLog(AccessLogConfig),
    /// AWS CloudTrail records.
    Cloudtrail(CloudTrailConfig),
    /// AWS GuardDuty findings.
    Guardduty(GuardDutyConfig),
}

impl PluginConfig {
    /// The `type` name (also the plugin's default name).
    pub fn kind(&self) -> &'static str {
        match self {
            PluginConfig::Ipfixup(_) => "ipfixup",
            PluginConfig::Geoip(_) => "geoip",
            PluginConfig::FieldLimit(_) => "field_limit",
            PluginConfig::Drop(_) => "drop",
            PluginConfig::Enrich(_) => "enrich",
            PluginConfig::Vrl(_) => "vrl",
            PluginConfig::Sshd(_) => "sshd",
            PluginConfig::SuSudo(_) => "su_sudo",
            PluginConfig::Auditd(_) => "auditd",
            PluginConfig::Zeek(_) => "zeek",
            PluginConfig::Suricata(_) => "suricata",
            PluginConfig::AccessLog(_) => "access_log",
            PluginConfig::Cloudtrail(_) => "cloudtrail",
            PluginConfig::Guardduty(_) => "guardduty",
        }
    }

    /// Every problem with this plugin's options.
    pub fn validate(&self) -> Vec<String> {
        match self {
            PluginConfig::Ipfixup(c) => c.validate(),
            PluginConfig::Geoip(c) => c.validate(),
            PluginConfig::FieldLimit(c) => c.validate(),
            PluginConfig::Drop(c) => c.validate(),
            PluginConfig::Enrich(c) => c.validate(),
            PluginConfig::Vrl(c) => c.validate(),
            PluginConfig::Sshd(c) => c.validate(),
            PluginConfig::SuSudo(c) => c.validate(),
            PluginConfig::Auditd(c) => c.validate(),
            PluginConfig::Zeek(c) => c.validate(),
            PluginConfig::Suricata(c) => c.validate(),
            PluginConfig::AccessLog(c) => c.validate(),
            PluginConfig::Cloudtrail(c) => c.validate(),
            PluginConfig::Guardduty(c) => c.validate(),
        }
    }

    /// Builds the plugin (`name` is its effective name, for messages).
    pub fn build(&self, name: &str, ctx: &PluginContext) -> Result<Box<dyn Plugin>, ConnectorError> {
        Ok(match self {
            PluginConfig::Ipfixup(c) => Box::new(IpFixup::new(c.clone())),
            PluginConfig::Geoip(c) => Box::new(GeoIp::open(c)?),
            PluginConfig::FieldLimit(c) => Box::new(FieldLimit::new(c)),
            PluginConfig::Drop(c) => Box::new(DropFilter::new(c)?),
            PluginConfig::Enrich(c) => Box::new(Enrich::new(c, ctx.lookups.clone())?),
            PluginConfig::Vrl(c) => Box::new(Vrl::load(name, c, &ctx.lookups, ctx.metrics.clone())?),
            PluginConfig::Sshd(c) => Box::new(SshdPlugin::new(c.clone())),
            PluginConfig::SuSudo(c) => Box::new(SuSudoPlugin::new(c.clone())),
            PluginConfig::Auditd(c) => Box::new(AuditdPlugin::new(c.clone())),
            PluginConfig::Zeek(c) => Box::new(ZeekPlugin::new(c.clone())),
            PluginConfig::Suricata(c) => Box::new(SuricataPlugin::new(c.clone())),
            PluginConfig::AccessLog(c) => Box::new(AccessLogPlugin::new(c.clone())),
            PluginConfig::Cloudtrail(c) => Box::new(CloudTrailPlugin::new(c.clone())),
            PluginConfig::Guardduty(c) => Box::new(GuardDutyPlugin::new(c.clone())),
        })
    }
}

/// One entry of `plugins:`: the settings every plugin has, then its own options.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginEntry {
    /// The name in the `plugins` field, logs and errors; must be unique. Default: the type
    /// (give names when a type is used twice, e.g. two `vrl` scripts).
    pub name: Option<String>,
    /// Run it. Default true; `false` keeps the entry in the file but out of the chain.
    pub enabled: bool,
    /// Overrides the plugin's priority (lower runs first). Default: the plugin's own
    /// (field_limit 0, drop 5, the parsers 7, ipfixup 10, geoip 20, enrich 30, vrl 100).
    pub priority: Option<i32>,
    /// Overrides the registration terms (`["*"]` = every event). Default: the plugin's own.
    pub terms: Option<Vec<String>>,
    /// The plugin's type and options.
    pub config: PluginConfig,
}

impl PluginEntry {
    /// An enabled entry with the plugin's own name, priority and terms.
    pub fn new(config: PluginConfig) -> PluginEntry {
        PluginEntry { name: None, enabled: true, priority: None, terms: None, config }
    }

    /// The effective name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.config.kind())
    }
}

/// Reads an entry: the common keys are taken off, the rest must be exactly one plugin's
/// options (unknown keys are errors, as everywhere in the config).
impl<'de> Deserialize<'de> for PluginEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut m = Map::<String, Value>::deserialize(d)?;
        let text = |v: Value| match v {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        };
        let name = m.remove("name").map(text).transpose()?;
        let enabled = match m.remove("enabled") {
            None => true,
            Some(Value::Bool(b)) => b,
            Some(v) => text(v)?.trim().parse().map_err(|_| D::Error::custom("enabled: must be true or false"))?,
        };
        let priority = match m.remove("priority") {
            None => None,
            Some(v) => {
                let t = text(v)?;
                Some(t.trim().parse::<i32>().map_err(|_| D::Error::custom(format!("priority: `{t}` is not a whole number")))?)
            }
        };
        let terms = match m.remove("terms") {
            None => None,
            Some(Value::Array(a)) => Some(a.into_iter().map(text).collect::<Result<Vec<_>, D::Error>>()?),
            Some(Value::String(s)) => Some(vec![s]),
            Some(_) => return Err(D::Error::custom("terms: must be a list of strings")),
        };
        let config: PluginConfig = serde_json::from_value(Value::Object(m)).map_err(|e| D::Error::custom(format!("{}{e}", name.as_deref().map(|n| format!("plugin `{n}`: ")).unwrap_or_default())))?;
        Ok(PluginEntry { name, enabled, priority, terms, config })
    }
}

/// Every problem in a `plugins:` list: each enabled entry's options (prefixed `plugins[i] (name)`),
/// repeated names, empty terms, too many plugins.
pub fn validate(entries: &[PluginEntry]) -> Vec<String> {
    let mut p = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("plugins[{i}] ({})", e.name());
        // A disabled entry is parsed (its keys must be right) but its files are not checked.
        if e.enabled {
            p.extend(e.config.validate().into_iter().map(|m| format!("{at}: {m}")));
        }
        if names.contains(&e.name()) {
            p.push(format!("{at}: the name `{}` is used twice; give each entry its own `name`", e.name()));
        }
        names.push(e.name());
        if e.name().trim().is_empty() {
            p.push(format!("{at}: name must not be empty"));
        }
        if let Some(t) = &e.terms {
            if t.is_empty() || t.iter().any(|x| x.is_empty()) {
                p.push(format!("{at}: terms: give at least one non-empty term (`*` for every event)"));
            }
        }
    }
    let enabled = entries.iter().filter(|e| e.enabled).count();
    if enabled > MAX_PLUGINS {
        p.push(format!("plugins: {enabled} enabled, at most {MAX_PLUGINS}"));
    }
    p
}

/// Builds the chain from the enabled entries. The first plugin that cannot be built stops
/// the load with its reason (a VRL compile error with file, line and column; an unreadable
/// database).
pub fn build_chain(entries: &[PluginEntry], ctx: &PluginContext) -> Result<Chain, ConnectorError> {
    let mut regs = Vec::new();
    for e in entries.iter().filter(|e| e.enabled) {
        let plugin = e.config.build(e.name(), ctx)?;
        let mut r = Registered::new(plugin);
        r.name = e.name().to_string();
        if let Some(p) = e.priority {
            r.priority = p;
        }
        if let Some(t) = &e.terms {
            r.terms = t.clone();
        }
        regs.push(r);
    }
    Ok(Chain::new(regs, ctx.metrics.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        plugins: Vec<PluginEntry>,
    }

    fn parse(text: &str) -> Result<Vec<PluginEntry>, String> {
        marked_yaml::from_yaml::<Doc>(0, text).map(|d| d.plugins).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_take_common_settings_and_typed_options() {
        let p = parse("plugins:\n  - type: ipfixup\n  - type: field_limit\n    max_bytes: 1024\n    priority: -3\n    enabled: false\n  - type: drop\n    name: no_cron\n    terms: [cron]\n    match: {program: CRON}\n").unwrap();
        assert_eq!(p[0], PluginEntry::new(PluginConfig::Ipfixup(IpFixupConfig { classify: true })));
        assert_eq!(p[1].config, PluginConfig::FieldLimit(FieldLimitConfig { max_bytes: 1024 }));
        assert_eq!((p[1].enabled, p[1].priority), (false, Some(-3)));
        assert_eq!(p[2].name(), "no_cron");
        assert_eq!(p[2].terms.as_deref(), Some(&["cron".to_string()][..]));
        assert!(validate(&p).is_empty(), "{:?}", validate(&p));
        let chain = build_chain(&p, &PluginContext::empty()).unwrap();
        assert_eq!(chain.names(), ["no_cron", "ipfixup"], "disabled entries are out; priority orders the rest");
    }

    #[test]
    fn parsers_register_and_run_before_the_enrichers_that_read_their_fields() {
        let p = parse("plugins:\n  - type: ipfixup\n  - type: sshd\n  - type: su_sudo\n  - type: auditd\n    max_args: 8\n  - type: zeek\n  - type: suricata\n  - type: access_log\n  - type: cloudtrail\n  - type: guardduty\n").unwrap();
        assert_eq!(p[3].config, PluginConfig::Auditd(AuditdConfig { max_args: 8 }));
        assert!(validate(&p).is_empty(), "{:?}", validate(&p));
        let chain = build_chain(&p, &PluginContext::empty()).unwrap();
        assert_eq!(chain.names(), ["sshd", "su_sudo", "auditd", "zeek", "suricata", "access_log", "cloudtrail", "guardduty", "ipfixup"]);
        let doc = serde_json::json!({"processname": "sshd", "summary": "Failed password for invalid user oracle from 198.51.100.23 port 40022 ssh2"});
        let mut e = rampart_core::Normalizer::default().normalize(doc, rampart_core::EventId(1)).unwrap();
        assert_eq!(chain.run(&mut e), super::super::ChainOutcome::Keep);
        assert_eq!(e.doc["details"]["username"], "oracle");
        assert_eq!(e.doc["plugins"], serde_json::json!(["sshd", "ipfixup"]), "ipfixup woke on the address sshd set: {:?}", e.doc);
        let e = parse("plugins:\n  - type: sshd\n    max_args: 3\n").unwrap_err();
        assert!(e.contains("max_args"), "{e}");
    }

    #[test]
    fn unknown_types_and_fields_are_errors() {
        let e = parse("plugins:\n  - type: lua\n").unwrap_err();
        assert!(e.contains("lua") && e.contains("ipfixup") && e.contains("vrl"), "serde names the valid types: {e}");
        let e = parse("plugins:\n  - type: field_limit\n    max_byte: 3\n").unwrap_err();
        assert!(e.contains("max_byte"), "{e}");
        let e = parse("plugins:\n  - type: ipfixup\n    priority: soon\n").unwrap_err();
        assert!(e.contains("priority") && e.contains("soon"), "{e}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let p = parse("plugins:\n  - type: drop\n  - type: vrl\n    file: /nope.vrl\n  - type: ipfixup\n    terms: []\n  - type: ipfixup\n").unwrap();
        let problems = validate(&p);
        assert!(problems.iter().any(|m| m.starts_with("plugins[0] (drop): give `match`")), "{problems:?}");
        assert!(problems.iter().any(|m| m.starts_with("plugins[1] (vrl): file: /nope.vrl does not exist")), "{problems:?}");
        assert!(problems.iter().any(|m| m.starts_with("plugins[2] (ipfixup): terms")), "{problems:?}");
        assert!(problems.iter().any(|m| m.starts_with("plugins[3] (ipfixup): the name `ipfixup` is used twice")), "{problems:?}");
    }

    #[test]
    fn the_example_config_parses_validates_and_builds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("config/examples/plugins.yml")).unwrap();
        #[derive(Debug, Deserialize)]
        struct Example {
            lookups: super::super::lookup::LookupsConfig,
            plugins: Vec<PluginEntry>,
        }
        let mut ex: Example = marked_yaml::from_yaml(0, &text).unwrap();
        // Paths in the example are relative to the repository root.
        for t in &mut ex.lookups.tables {
            t.path = root.join(&t.path);
        }
        for l in &mut ex.lookups.lists {
            l.path = root.join(&l.path);
        }
        for e in &mut ex.plugins {
            if let PluginConfig::Vrl(v) = &mut e.config {
                v.file = root.join(&v.file);
            }
        }
        assert!(ex.lookups.validate().is_empty(), "{:?}", ex.lookups.validate());
        let lookups = std::sync::Arc::new(super::super::Lookups::load(&ex.lookups, None).unwrap());
        let ctx = PluginContext { lookups, metrics: std::sync::Arc::new(rampart_core::Metrics::new()) };
        // The example's geoip entry is disabled: the repository ships no database.
        let entries = ex.plugins;
        let chain = build_chain(&entries, &ctx).unwrap();
        assert!(chain.names().len() >= 5, "{:?}", chain.names());
        let problems = validate(&entries);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
