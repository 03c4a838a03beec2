//! `cloudtrail`: shapes AWS CloudTrail records as MozDef's `cloudtrail` plugin and worker did.
//!
//! A record arrives with its fields in `details` (the `cloudtrail` input puts them there and
//! sets `source: cloudtrail` and `utctimestamp` from `eventTime`; a record sent any other way
//! lands there through normalization). Every key under `details` is lower-cased and loses its
//! dots (`sourceIPAddress` becomes `details.sourceipaddress`, which rules and the IP plugins
//! read). Fields whose JSON type differs from one API call to another
//! (`requestparameters.policy` is a string in one call and an object in the next) would make
//! Elasticsearch reject documents once a mapping exists, so each path in `raw_value_keys` is
//! replaced by `{"raw_value": "<its text or JSON>"}`, as MozDef did. The plugin then sets
//! `details.username` (the caller, from `useridentity`), `details.success` (no `errorcode`),
//! `summary` (`alice called iam.amazonaws.com CreateAccessKey in us-east-1`, with `failed:
//! <errorcode>` on errors), `hostname` (the `eventsource`, when the event has none),
//! `source` and `category` `cloudtrail`, and tag `cloudtrail`.

use super::fields::{PARSER_PRIORITY, add_tag, clean_keys, details, set_text, text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Options of the `cloudtrail` plugin.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudTrailConfig {
    /// Paths under `details` (lower case, dot-separated) whose value is replaced by
    /// `{"raw_value": text}` because its type varies between API calls. Default: the fields
    /// known to vary (`requestparameters.policy`, `responseelements.role`, …; see
    /// docs/plugins.md).
    #[serde(default = "default_raw_value_keys")]
    pub raw_value_keys: Vec<String>,
}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["cloudtrail", "eventversion"].map(String::from).to_vec()
}

/// Fields seen with more than one JSON type across CloudTrail API calls.
pub const RAW_VALUE_KEYS: &[&str] = &[
    "additionaleventdata",
    "apiversion",
    "serviceeventdetails",
    "requestparameters.attribute",
    "requestparameters.description",
    "requestparameters.disableapitermination",
    "requestparameters.domainname",
    "requestparameters.filter",
    "requestparameters.iaminstanceprofile",
    "requestparameters.instancetype",
    "requestparameters.policy",
    "requestparameters.rule",
    "requestparameters.source",
    "requestparameters.tagging",
    "requestparameters.value",
    "responseelements.policy",
    "responseelements.role",
    "responseelements.securitygroupids",
];

fn default_raw_value_keys() -> Vec<String> {
    RAW_VALUE_KEYS.iter().map(|s| s.to_string()).collect()
}

impl Default for CloudTrailConfig {
    fn default() -> Self {
        CloudTrailConfig { raw_value_keys: default_raw_value_keys() }
    }
}

impl CloudTrailConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for k in &self.raw_value_keys {
            if k.is_empty() || k.split('.').any(str::is_empty) || k.chars().any(char::is_uppercase) {
                problems.push(format!("cloudtrail: raw_value_keys: `{k}` is not a lower-case dotted path under details (e.g. `requestparameters.policy`)"));
            }
        }
        problems
    }
}

/// The `cloudtrail` plugin: see the module docs.
#[derive(Debug)]
pub struct CloudTrailPlugin {
    raw_value_keys: Vec<Vec<String>>,
}

impl CloudTrailPlugin {
    /// A plugin with these options.
    pub fn new(cfg: CloudTrailConfig) -> CloudTrailPlugin {
        let raw_value_keys = cfg.raw_value_keys.iter().map(|k| k.split('.').map(String::from).collect()).collect();
        CloudTrailPlugin { raw_value_keys }
    }
}

impl Plugin for CloudTrailPlugin {
    fn name(&self) -> &str {
        "cloudtrail"
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
        let is_record = |k: &str| d.keys().any(|key| key.eq_ignore_ascii_case(k));
        if !(is_record("eventversion") && is_record("eventsource") && is_record("eventname")) {
            return Verdict::Keep;
        }
        let d = details(doc);
        // Wrap first, so the raw text keeps the sender's key case.
        for path in &self.raw_value_keys {
            wrap_raw(d, path);
        }
        if let Value::Object(clean) = clean_keys(Value::Object(std::mem::take(d)), true) {
            *d = clean;
        }
        let user = caller(d);
        if let Some(u) = &user {
            d.insert("username".into(), u.clone().into());
        }
        let error = d.get("errorcode").and_then(Value::as_str).map(str::to_string);
        d.insert("success".into(), error.is_none().into());
        let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (name, source, region) = (get("eventname"), get("eventsource"), get("awsregion"));
        let mut summary = format!("{} called {source} {name}", user.as_deref().unwrap_or("unknown caller"));
        if !region.is_empty() {
            summary.push_str(&format!(" in {region}"));
        }
        if let Some(e) = error {
            summary.push_str(&format!(" failed: {e}"));
        }
        set_text(doc, "summary", summary);
        if text(doc, "hostname").is_none_or(str::is_empty) && !source.is_empty() {
            set_text(doc, "hostname", source);
        }
        set_text(doc, "source", "cloudtrail");
        set_text(doc, "category", "cloudtrail");
        add_tag(doc, "cloudtrail");
        Verdict::Keep
    }
}

/// Who made the call: the IAM user name, the assumed role's session (`role/session`), the
/// root account, or the AWS service that acted.
fn caller(d: &Map<String, Value>) -> Option<String> {
    let id = d.get("useridentity")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(u) = s(id, "username") {
        return Some(u);
    }
    if let Some(issuer) = id.get("sessioncontext").and_then(|c| c.get("sessionissuer")) {
        if let (Some(role), Some(arn)) = (s(issuer, "username"), s(id, "arn")) {
            let session = arn.rsplit('/').next().unwrap_or("");
            return Some(if session.is_empty() { role } else { format!("{role}/{session}") });
        }
    }
    match s(id, "type").as_deref() {
        Some("Root") => Some("root".to_string()),
        Some("AWSService") => s(id, "invokedby"),
        _ => s(id, "arn").or_else(|| s(id, "principalid")),
    }
}

/// The value under `key`, whatever the case of its key (`requestParameters` for
/// `requestparameters`), and dots in the key ignored as `clean_keys` drops them.
fn get_folded<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    m.iter_mut().find(|(k, _)| k.chars().filter(|c| *c != '.').flat_map(char::to_lowercase).eq(key.chars())).map(|(_, v)| v)
}

/// Replaces the value at `path` (lower case) with `{"raw_value": text}`; absent paths are
/// left alone.
fn wrap_raw(d: &mut Map<String, Value>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = d;
    for p in parents {
        match get_folded(at, p) {
            Some(Value::Object(m)) => at = m,
            _ => return,
        }
    }
    if let Some(v) = get_folded(at, last) {
        if v.is_null() || v.get("raw_value").is_some() {
            return;
        }
        let text = match &mut *v {
            Value::String(s) => std::mem::take(s),
            other => other.to_string(),
        };
        let mut m = Map::new();
        m.insert("raw_value".into(), text.into());
        *v = Value::Object(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use serde_json::json;

    fn run(doc: Value) -> Map<String, Value> {
        kept(&CloudTrailPlugin::new(CloudTrailConfig::default()), doc)
    }

    fn record() -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEEXAMPLE01", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEKEY00001", "userName": "alice"},
            "eventTime": "2023-11-14T22:13:20Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "PutUserPolicy",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.20",
            "userAgent": "aws-cli/2.13.30 Python/3.11.6 Linux/6.2.0 exe/x86_64.ubuntu.22",
            "requestParameters": {"userName": "bob", "policyName": "admin", "policyDocument": "{\"Version\":\"2012-10-17\"}", "policy": {"Statement": [{"Effect": "Allow"}]}, "tag.Key": "x"},
            "responseElements": null,
            "requestID": "9d6f2c51-0000-4000-8000-000000000001",
            "eventID": "4bb1f0f2-0000-4000-8000-000000000002",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management"
        })
    }

    #[test]
    fn record_keys_are_lowered_dots_removed_and_varying_fields_wrapped() {
        let d = run(json!({"source": "cloudtrail", "summary": "", "hostname": "", "tags": [], "details": record()}));
        assert_eq!(d["summary"], "alice called iam.amazonaws.com PutUserPolicy in us-east-1");
        assert_eq!(d["category"], "cloudtrail");
        assert_eq!(d["hostname"], "iam.amazonaws.com");
        assert_eq!(d["tags"], json!(["cloudtrail"]));
        let det = &d["details"];
        assert_eq!(det["sourceipaddress"], "198.51.100.20");
        assert_eq!(det["useridentity"]["accesskeyid"], "AKIAEXAMPLEKEY00001");
        assert_eq!(det["requestparameters"]["username"], "bob");
        assert_eq!(det["requestparameters"]["tagkey"], "x");
        assert_eq!(det["requestparameters"]["policy"], json!({"raw_value": "{\"Statement\":[{\"Effect\":\"Allow\"}]}"}));
        assert_eq!(det["username"], "alice");
        assert_eq!(det["success"], true);
        assert!(det.get("eventName").is_none());
    }

    #[test]
    fn assumed_roles_root_and_errors() {
        let mut r = record();
        r["userIdentity"] = json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:ci-deploy", "arn": "arn:aws:sts::111122223333:assumed-role/Deployer/ci-deploy", "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Deployer", "arn": "arn:aws:iam::111122223333:role/Deployer"}}});
        r["eventSource"] = json!("s3.amazonaws.com");
        r["eventName"] = json!("DeleteBucketPolicy");
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("Access Denied");
        // Sent straight to the HTTP input: the normalizer put the record's keys in details.
        let d = run(json!({"source": "UNKNOWN", "summary": "", "hostname": "laptop", "tags": [], "details": r}));
        assert_eq!(d["summary"], "Deployer/ci-deploy called s3.amazonaws.com DeleteBucketPolicy in us-east-1 failed: AccessDenied");
        assert_eq!(d["details"]["success"], false);
        assert_eq!(d["hostname"], "laptop", "a hostname the event has is kept");
        assert_eq!(d["source"], "cloudtrail");

        let mut r = record();
        r["userIdentity"] = json!({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root"});
        r["eventName"] = json!("ConsoleLogin");
        r["eventType"] = json!("AwsConsoleSignIn");
        r["responseElements"] = json!({"ConsoleLogin": "Success"});
        let d = run(json!({"details": r}));
        assert_eq!(d["details"]["username"], "root");
        assert_eq!(d["details"]["responseelements"]["consolelogin"], "Success");
    }

    #[test]
    fn other_events_are_left_alone() {
        let doc = json!({"source": "cloudtrail", "summary": "digest file delivered", "details": {"digestS3Object": "AWSLogs/x.json.gz", "eventVersion": "1.0"}});
        assert_eq!(Value::Object(run(doc.clone())), doc);
        let cfg = CloudTrailConfig { raw_value_keys: vec!["requestParameters.policy".into(), "a..b".into()] };
        assert_eq!(cfg.validate().len(), 2);
    }
}
