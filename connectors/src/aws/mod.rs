//! AWS inputs through the AWS SDK for Rust (`aws-sdk-s3`, `aws-sdk-sqs`, `aws-config` 1.x,
//! HTTPS through rustls on ring): CloudTrail log files from a directory or an S3 bucket
//! ([`cloudtrail`]) and SQS notifications ([`sqs`]: S3 `ObjectCreated` events and CloudTrail's
//! own notifications pointing at CloudTrail files, and GuardDuty findings from EventBridge).
//!
//! What both share lives here: the connection settings ([`AwsConfig`]: region, endpoint for
//! S3/SQS-compatible servers, path-style addressing, credentials from the environment, a
//! profile, or the config file as redacted secrets), the client builders, how a CloudTrail
//! file becomes events, and how SDK failures become [`ConnectorError`]s with a retry hint.
//!
//! A CloudTrail record becomes `{"source": "cloudtrail", "utctimestamp": eventTime,
//! "details": record}` before normalization (the `cloudtrail` plugin then shapes it). Its
//! event id derives from the record's `eventID` alone, so the same record read from a file,
//! from S3 or through SQS is one document in the store, however often it is read.

pub mod cloudtrail;
pub mod sqs;

use crate::error::ConnectorError;
use crate::secret::{redact_url, Secret};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rampart_core::{Domain, Event, EventId, EventTime, Normalizer, Retry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read;

/// How to reach AWS (or an S3/SQS-compatible server): the `aws:` block of the `cloudtrail`
/// and `sqs` inputs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// The AWS region. Default `us-east-1` (also the region requests are signed for when
    /// `endpoint` points at a compatible server).
    #[serde(default = "default_region")]
    pub region: String,
    /// Send requests here instead of AWS's regional endpoints (`http://127.0.0.1:4566` for a
    /// local S3/SQS-compatible server). Default: AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`; most
    /// compatible servers need it. Default false.
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub force_path_style: bool,
    /// A profile of `~/.aws/config` and `~/.aws/credentials` to take credentials and settings
    /// from. Default: the SDK's chain (environment `AWS_ACCESS_KEY_ID`…, the default
    /// profile, web identity, ECS and EC2 instance roles).
    #[serde(default)]
    pub profile: Option<String>,
    /// A static access key id; needs `secret_access_key`. Default: none (the SDK's chain).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The static secret key (never logged). Default: none.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary static credentials (never logged). Default: none.
    #[serde(default)]
    pub session_token: Option<Secret>,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig { region: default_region(), endpoint: None, force_path_style: false, profile: None, access_key_id: None, secret_access_key: None, session_token: None }
    }
}

impl AwsConfig {
    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.region.trim().is_empty() {
            problems.push("aws.region is empty: name the region (e.g. us-east-1)".to_string());
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                problems.push(format!("aws.endpoint `{}` must start with http:// or https://", redact_url(e)));
            }
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => problems.push("aws.access_key_id is set without aws.secret_access_key: set both, or neither to use the SDK's credential chain".to_string()),
            (None, Some(_)) => problems.push("aws.secret_access_key is set without aws.access_key_id: set both, or neither to use the SDK's credential chain".to_string()),
            _ => {}
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            problems.push("aws.session_token needs aws.access_key_id and aws.secret_access_key".to_string());
        }
        if self.profile.is_some() && self.access_key_id.is_some() {
            problems.push("aws.profile and aws.access_key_id are both set: use one source of credentials".to_string());
        }
        problems
    }

    /// Where requests go, for logs and errors (credentials removed).
    pub fn peer(&self) -> String {
        match &self.endpoint {
            Some(e) => redact_url(e),
            None => format!("aws:{}", self.region),
        }
    }

    /// The SDK settings: region, endpoint, credentials and an HTTPS client on rustls/ring.
    pub async fn sdk_config(&self) -> SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(self.region.clone())).http_client(http);
        if let Some(e) = &self.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p.clone());
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            let token = self.session_token.as_ref().map(|t| t.expose().to_string());
            loader = loader.credentials_provider(Credentials::new(id.clone(), secret.expose().to_string(), token, None, "rampart-config"));
        }
        loader.load().await
    }

    /// An S3 client with these settings.
    pub fn s3(&self, sdk: &SdkConfig) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(self.force_path_style).build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// An SQS client with these settings.
    pub fn sqs(&self, sdk: &SdkConfig) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(sdk)
    }
}

/// Service error codes no retry can fix: the user has to change credentials, names or
/// permissions.
const USER_ERRORS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "NoSuchBucket",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "InvalidAddress",
    "ExpiredToken",
];

/// An SDK failure as a [`ConnectorError`]: refusals that need the user (bad credentials, a
/// missing bucket or queue) are `Retry::Never`, the rest (network, throttling, 5xx) `Later`.
pub fn sdk_error<E, R>(component: &'static str, peer: &str, what: &str, e: &SdkError<E, R>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (domain, retry, hint) = match e {
        SdkError::ConstructionFailure(_) => (Domain::User, Retry::Never, "check the aws settings"),
        SdkError::ServiceError(s) if s.err().code().is_some_and(|c| USER_ERRORS.contains(&c)) => (Domain::User, Retry::Never, "check the credentials, the name and the permissions"),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (Domain::External, Retry::Later, "is the endpoint reachable?"),
        _ => (Domain::External, Retry::Later, "retrying"),
    };
    let detail = match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("")),
        None => DisplayErrorContext(e).to_string(),
    };
    ConnectorError::Peer { component, peer: peer.to_string(), message: format!("{what}: {detail} ({hint})"), domain, retry }
}

/// Whether a key or file name is a CloudTrail log file worth reading: `.json.gz` or `.json`,
/// not a digest file (digests hold hashes, not records), not hidden.
pub fn is_log_file(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    (name.ends_with(".json.gz") || name.ends_with(".json")) && !name.starts_with('.') && !key.contains("CloudTrail-Digest")
}

/// Decodes a CloudTrail log file (gzip, as CloudTrail writes them, or plain JSON) into
/// normalized events; `origin` names the file in ids of records without an `eventID` and in
/// errors. `Err` says why the file holds no records.
pub fn cloudtrail_events(bytes: &[u8], origin: &str, max_bytes: usize, normalizer: &Normalizer) -> Result<Vec<Event>, String> {
    let mut text = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // `take` bounds what a hostile or broken file can make us inflate.
        let mut gz = flate2::read::MultiGzDecoder::new(bytes).take(max_bytes as u64 + 1);
        gz.read_to_end(&mut text).map_err(|e| format!("not a readable gzip file: {e}"))?;
    } else {
        text.extend_from_slice(bytes);
    }
    if text.len() > max_bytes {
        return Err(format!("larger than max_file_bytes ({max_bytes} bytes) once decompressed"));
    }
    let doc: Value = serde_json::from_slice(&text).map_err(|e| format!("not JSON: line {}, column {}: {e}", e.line(), e.column()))?;
    let Some(Value::Array(records)) = doc.get("Records") else {
        return Err("no `Records` array: not a CloudTrail log file".to_string());
    };
    let received = EventTime::now();
    let mut events = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let Value::Object(r) = record else {
            return Err(format!("record {i} is not a JSON object"));
        };
        events.push(record_event(r.clone(), origin, i as u64, received, normalizer)?);
    }
    Ok(events)
}

/// One CloudTrail record as an event (see the module docs for its shape and id).
pub fn record_event(record: Map<String, Value>, origin: &str, index: u64, received: EventTime, normalizer: &Normalizer) -> Result<Event, String> {
    let id = match record.get("eventID").and_then(Value::as_str) {
        Some(event_id) => EventId::derive("cloudtrail", 0, event_id.as_bytes()),
        None => EventId::derive(origin, index, b""),
    };
    let mut doc = Map::new();
    doc.insert("source".into(), "cloudtrail".into());
    if let Some(t) = record.get("eventTime").cloned() {
        doc.insert("utctimestamp".into(), t);
    }
    doc.insert("details".into(), Value::Object(record));
    normalizer.normalize_at(Value::Object(doc), id, received).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    pub(crate) fn gz(value: &Value) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(value.to_string().as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn cloudtrail_files_become_events_with_stable_ids() {
        let file = json!({"Records": [
            {"eventVersion": "1.08", "eventTime": "2023-11-14T22:13:20Z", "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity", "eventID": "e-1"},
            {"eventVersion": "1.08", "eventTime": "2023-11-14T22:13:21Z", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets"}
        ]});
        let n = Normalizer::default();
        let events = cloudtrail_events(&gz(&file), "f1", 1 << 20, &n).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].doc["source"], "cloudtrail");
        assert_eq!(events[0].doc["utctimestamp"], "2023-11-14T22:13:20.000+00:00");
        assert_eq!(events[0].doc["details"]["eventName"], "GetCallerIdentity");
        // Same eventID from another file: same id. No eventID: the file and position decide.
        let again = cloudtrail_events(file.to_string().as_bytes(), "f2", 1 << 20, &n).unwrap();
        assert_eq!(again[0].id, events[0].id);
        assert_ne!(again[1].id, events[1].id);
    }

    #[test]
    fn bad_files_say_why() {
        let n = Normalizer::default();
        assert!(cloudtrail_events(b"\x1f\x8bnot gzip", "f", 1024, &n).unwrap_err().contains("gzip"));
        assert!(cloudtrail_events(b"{\"a\":", "f", 1024, &n).unwrap_err().contains("not JSON"));
        assert!(cloudtrail_events(b"{\"CloudTrailDigest\":1}", "f", 1024, &n).unwrap_err().contains("Records"));
        assert!(cloudtrail_events(&gz(&json!({"Records": [1]})), "f", 1024, &n).unwrap_err().contains("record 0"));
        assert!(cloudtrail_events(&gz(&json!({"Records": ["x".repeat(2000)]})), "f", 1024, &n).unwrap_err().contains("max_file_bytes"));
        assert!(is_log_file("AWSLogs/1/CloudTrail/us-east-1/2023/11/14/1_CloudTrail_us-east-1_20231114T2215Z_a1.json.gz"));
        assert!(!is_log_file("AWSLogs/1/CloudTrail-Digest/us-east-1/2023/11/14/1_CloudTrail-Digest_x.json.gz"));
        assert!(!is_log_file("dir/.state"));
        assert!(!is_log_file("dir/notes.txt"));
    }

    #[test]
    fn settings_validate_and_never_show_secrets() {
        let c = AwsConfig { endpoint: Some("localhost:4566".into()), access_key_id: Some("AKIA".into()), ..Default::default() };
        assert_eq!(c.validate().len(), 2, "{:?}", c.validate());
        let c = AwsConfig { secret_access_key: Some(Secret::new("wJalrXUtnFEMI")), access_key_id: Some("AKIA".into()), ..Default::default() };
        assert!(c.validate().is_empty());
        assert!(!format!("{c:?}").contains("wJalrXUtnFEMI"));
        assert!(!serde_json::to_string(&c).unwrap().contains("wJalrXUtnFEMI"));
        assert_eq!(AwsConfig { endpoint: Some("http://u:p@127.0.0.1:4566".into()), ..Default::default() }.peer(), "http://u:***@127.0.0.1:4566");
    }
}
