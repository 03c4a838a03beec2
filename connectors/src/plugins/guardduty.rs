//! `guardduty`: shapes AWS GuardDuty findings as MozDef's `guardDuty` plugin did.
//!
//! A finding arrives either raw in `details` (the `sqs` input puts a bare finding there with
//! `source: guardduty`) or inside an EventBridge envelope (`detail-type: GuardDuty Finding`,
//! the finding under `detail`), which the normalizer leaves as `details.detail`. The plugin
//! makes the finding `details` (the envelope's `account`, `region` and `id` kept as
//! `eventbridge*`), lower-cases its keys and removes their dots, and sets
//! `details.findingtype` (`Recon:EC2/PortProbeUnprotectedPort`), `details.severity` (the
//! number) and `details.severitylabel` (`LOW` below 4, `MEDIUM` below 7, `HIGH` below 9,
//! else `CRITICAL`), `details.resourcetype`, `details.instanceid`, `details.accesskeyid`,
//! `details.actiontype`, `details.sourceipaddress` (the remote IP of the action),
//! `details.sourcecountry`; `summary` from the finding's `title`; `severity` (`NOTICE`,
//! `WARNING`, `ERROR`, `CRITICAL` by label); `source` and `category` `guardduty`; tags
//! `guardduty` and `aws`.

use super::fields::{PARSER_PRIORITY, add_tag, clean_keys, details, set_text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Options of the `guardduty` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardDutyConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["guardduty", "aws.guardduty", "GuardDuty Finding"].map(String::from).to_vec()
}

impl GuardDutyConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `guardduty` plugin: see the module docs.
#[derive(Debug)]
pub struct GuardDutyPlugin;

impl GuardDutyPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: GuardDutyConfig) -> GuardDutyPlugin {
        GuardDutyPlugin
    }
}

/// Whether a JSON object is a GuardDuty finding (any key case).
fn is_finding(m: &Map<String, Value>) -> bool {
    let get = |k: &str| m.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v);
    let arn = get("arn").and_then(Value::as_str).unwrap_or("");
    arn.contains(":guardduty:") && get("type").is_some() && get("severity").is_some()
}

impl Plugin for GuardDutyPlugin {
    fn name(&self) -> &str {
        "guardduty"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let doc = &mut *event.doc;
        let Some(Value::Object(d)) = doc.get("details") else { return Verdict::Keep };
        let enveloped = matches!(d.get("detail"), Some(Value::Object(f)) if is_finding(f));
        if !enveloped && !is_finding(d) {
            return Verdict::Keep;
        }
        let d = details(doc);
        let mut finding = std::mem::take(d);
        if enveloped {
            let mut envelope = finding;
            finding = match envelope.remove("detail") {
                Some(Value::Object(f)) => f,
                _ => Map::new(),
            };
            for (k, to) in [("account", "eventbridgeaccount"), ("region", "eventbridgeregion"), ("id", "eventbridgeid")] {
                if let Some(v) = envelope.remove(k) {
                    finding.insert(to.into(), v);
                }
            }
        }
        let Value::Object(mut f) = clean_keys(Value::Object(finding), true) else { return Verdict::Keep };
        let title = f.get("title").and_then(Value::as_str).unwrap_or("").to_string();
        let severity = f.get("severity").and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0.0);
        let (label, level) = match severity {
            s if s < 4.0 => ("LOW", "NOTICE"),
            s if s < 7.0 => ("MEDIUM", "WARNING"),
            s if s < 9.0 => ("HIGH", "ERROR"),
            _ => ("CRITICAL", "CRITICAL"),
        };
        if let Some(t) = f.get("type").cloned() {
            f.insert("findingtype".into(), t);
        }
        f.insert("severitylabel".into(), label.into());
        derive(&mut f);
        *d = f;
        if !title.is_empty() {
            set_text(doc, "summary", title);
        }
        set_text(doc, "severity", level);
        set_text(doc, "source", "guardduty");
        set_text(doc, "category", "guardduty");
        add_tag(doc, "guardduty");
        add_tag(doc, "aws");
        Verdict::Keep
    }
}

/// `a.b.c` in a lower-cased finding.
fn path<'a>(v: &'a Map<String, Value>, p: &str) -> Option<&'a Value> {
    let mut parts = p.split('.');
    let mut at = v.get(parts.next()?)?;
    for part in parts {
        at = match at {
            Value::Array(a) => a.first()?.get(part)?,
            other => other.get(part)?,
        };
    }
    Some(at)
}

/// The fields rules and the IP plugins read, lifted out of the finding's nesting.
fn derive(f: &mut Map<String, Value>) {
    let mut lift: Vec<(&str, Value)> = Vec::new();
    for (to, from) in [
        ("resourcetype", "resource.resourcetype"),
        ("instanceid", "resource.instancedetails.instanceid"),
        ("accesskeyid", "resource.accesskeydetails.accesskeyid"),
        ("actiontype", "service.action.actiontype"),
    ] {
        if let Some(v) = path(f, from).filter(|v| !v.is_null()) {
            lift.push((to, v.clone()));
        }
    }
    // The remote peer sits under whichever action the finding is about.
    for action in ["networkconnectionaction", "awsapicallaction", "dnsrequestaction", "portprobeaction.portprobedetails", "kubernetesapicallaction", "rdsloginattemptaction"] {
        let base = format!("service.action.{action}.remoteipdetails");
        if let Some(ip) = path(f, &format!("{base}.ipaddressv4")).or_else(|| path(f, &format!("{base}.ipaddressv6"))).and_then(Value::as_str) {
            lift.push(("sourceipaddress", ip.into()));
            if let Some(c) = path(f, &format!("{base}.country.countryname")) {
                lift.push(("sourcecountry", c.clone()));
            }
            break;
        }
    }
    for (k, v) in lift {
        f.insert(k.into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use rampart_core::{EventId, Normalizer};
    use serde_json::json;

    fn finding() -> Value {
        json!({
            "schemaVersion": "2.0",
            "accountId": "111122223333",
            "region": "us-east-1",
            "partition": "aws",
            "id": "60c5ab7e8f00e9a1b2c3d4e5f6a7b8c9",
            "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/60c5ab7e8f00e9a1b2c3d4e5f6a7b8c9",
            "type": "Recon:EC2/PortProbeUnprotectedPort",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0a1b2c3d4e5f60718", "instanceType": "t3.micro"}},
            "service": {"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0", "action": {"actionType": "PORT_PROBE", "portProbeAction": {"blocked": false, "portProbeDetails": [{"localPortDetails": {"port": 22, "portName": "SSH"}, "remoteIpDetails": {"ipAddressV4": "198.51.100.99", "country": {"countryName": "Netherlands"}}}]}}, "count": 14},
            "severity": 5.0,
            "createdAt": "2023-11-14T20:01:02.345Z",
            "updatedAt": "2023-11-14T22:13:20.000Z",
            "title": "Unprotected port on EC2 instance i-0a1b2c3d4e5f60718 is being probed.",
            "description": "EC2 instance has an unprotected port which is being probed by a known malicious host."
        })
    }

    fn run(doc: Value) -> Map<String, Value> {
        kept(&GuardDutyPlugin::new(GuardDutyConfig::default()), doc)
    }

    #[test]
    fn raw_finding_from_the_sqs_input() {
        let d = run(json!({"source": "guardduty", "summary": "", "severity": "INFO", "tags": [], "details": finding()}));
        assert_eq!(d["summary"], "Unprotected port on EC2 instance i-0a1b2c3d4e5f60718 is being probed.");
        assert_eq!(d["severity"], "WARNING");
        assert_eq!(d["category"], "guardduty");
        assert_eq!(d["tags"], json!(["guardduty", "aws"]));
        let det = &d["details"];
        assert_eq!(det["findingtype"], "Recon:EC2/PortProbeUnprotectedPort");
        assert_eq!(det["severity"], 5.0);
        assert_eq!(det["severitylabel"], "MEDIUM");
        assert_eq!(det["resourcetype"], "Instance");
        assert_eq!(det["instanceid"], "i-0a1b2c3d4e5f60718");
        assert_eq!(det["actiontype"], "PORT_PROBE");
        assert_eq!(det["sourceipaddress"], "198.51.100.99");
        assert_eq!(det["sourcecountry"], "Netherlands");
        assert_eq!(det["accountid"], "111122223333");
    }

    #[test]
    fn eventbridge_envelope_through_the_normalizer() {
        let mut f = finding();
        f["type"] = json!("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom");
        f["severity"] = json!(8.0);
        f["resource"] = json!({"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "AKIAEXAMPLEKEY00001", "userName": "alice"}});
        f["service"]["action"] = json!({"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "remoteIpDetails": {"ipAddressV4": "203.0.113.66"}}});
        let envelope = json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "account": "111122223333", "time": "2023-11-14T22:13:20Z", "region": "us-east-1", "resources": [], "detail": f});
        let e = Normalizer::default().normalize(envelope, EventId(1)).unwrap();
        let d = run(Value::Object(e.doc.clone()));
        assert_eq!(d["source"], "guardduty");
        assert_eq!(d["severity"], "ERROR");
        assert_eq!(d["details"]["severitylabel"], "HIGH");
        assert_eq!(d["details"]["accesskeyid"], "AKIAEXAMPLEKEY00001");
        assert_eq!(d["details"]["sourceipaddress"], "203.0.113.66");
        assert_eq!(d["details"]["eventbridgeid"], "7bf73129-1428-4cd3-a780-95db273d1602");
        assert!(d["details"].get("detail").is_none());
    }

    #[test]
    fn other_events_are_left_alone() {
        for doc in [
            json!({"source": "guardduty", "summary": "detector created", "details": {"detectorId": "12abc"}}),
            json!({"source": "aws.guardduty", "details": {"detail-type": "GuardDuty Finding", "detail": {"type": "x"}}}),
            json!({"details": {"arn": "arn:aws:iam::1:user/x", "type": "y", "severity": 1}}),
        ] {
            assert_eq!(Value::Object(run(doc.clone())), doc);
        }
    }
}
