//! The `cloudtrail` and `sqs` inputs against a local S3/SQS-compatible server (moto, from
//! PyPI; `bash scripts/services/moto.sh start` runs it on 127.0.0.1:4566).
//!
//! S3 is `RAMPART_TEST_S3_URL` and SQS `RAMPART_TEST_SQS_URL` (both default
//! `http://127.0.0.1:4566`). These tests fail, never skip, when the server is unreachable.
//! Every test uses its own bucket and queue.
//!
//! The inputs run as the pipeline runs them (`run(cfg, SourceContext)`), and the test plays
//! the outputs: it takes each batch and settles each event's ack token as it decides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use aws_sdk_s3::primitives::ByteStream;
use rampart_connectors::aws::cloudtrail::{self, CloudTrailInputConfig};
use rampart_connectors::aws::sqs::{self, SqsConfig};
use rampart_connectors::aws::AwsConfig;
use rampart_connectors::plugins::cloudtrail::{CloudTrailConfig, CloudTrailPlugin};
use rampart_connectors::plugins::guardduty::{GuardDutyConfig, GuardDutyPlugin};
use rampart_connectors::plugins::{Plugin, PluginEvent, Route};
use rampart_connectors::{shutdown_pair, Secret, SourceContext};
use rampart_core::{AckStatus, Counter, Event, Metrics, Normalizer};
use rampart_tests::services::unique;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| "http://127.0.0.1:4566".to_string())
}

/// Fails loudly when nothing answers at `url`.
fn reachable(service: &str, var: &str, url: &str) {
    let host = url.trim_start_matches("http://").trim_start_matches("https://").split('/').next().unwrap_or("");
    let ok = std::net::ToSocketAddrs::to_socket_addrs(host).ok().and_then(|mut a| a.next()).is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    assert!(ok, "{service} is not answering at {url}: start the local S3/SQS server with `bash scripts/services/moto.sh start`, or point {var} at a running one");
}

fn aws(url: &str) -> AwsConfig {
    AwsConfig {
        endpoint: Some(url.to_string()),
        force_path_style: true,
        access_key_id: Some("testing".to_string()),
        secret_access_key: Some(Secret::new("testing")),
        ..Default::default()
    }
}

async fn s3() -> (AwsConfig, aws_sdk_s3::Client) {
    let url = env_url("RAMPART_TEST_S3_URL");
    reachable("S3 (moto)", "RAMPART_TEST_S3_URL", &url);
    let cfg = aws(&url);
    let client = cfg.s3(&cfg.sdk_config().await);
    (cfg, client)
}

async fn sqs_client() -> (AwsConfig, aws_sdk_sqs::Client) {
    let url = env_url("RAMPART_TEST_SQS_URL");
    reachable("SQS (moto)", "RAMPART_TEST_SQS_URL", &url);
    let cfg = aws(&url);
    let client = cfg.sqs(&cfg.sdk_config().await);
    (cfg, client)
}

fn gz(v: &Value) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(v.to_string().as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn record(id: &str, name: &str, user: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::111122223333:user/{user}"), "accountId": "111122223333", "userName": user},
        "eventTime": "2023-11-14T22:13:20Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.20",
        "userAgent": "aws-cli/2.13.30",
        "requestParameters": {"userName": "bob"},
        "responseElements": null,
        "eventID": id,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    })
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await.unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
}

fn context() -> (SourceContext, flume::Receiver<Vec<Event>>, rampart_connectors::ShutdownTrigger, Arc<Metrics>) {
    let (tx, rx) = flume::bounded(64);
    let (trigger, shutdown) = shutdown_pair();
    let metrics = Arc::new(Metrics::new());
    (SourceContext { out: tx, metrics: metrics.clone(), normalizer: Normalizer::default(), shutdown }, rx, trigger, metrics)
}

/// Plays the outputs for a finite input: keeps each event's document and drops the event,
/// which acks it as stored.
fn store_all(rx: flume::Receiver<Vec<Event>>) -> tokio::task::JoinHandle<Vec<serde_json::Map<String, Value>>> {
    tokio::spawn(async move {
        let mut docs = Vec::new();
        while let Ok(batch) = rx.recv_async().await {
            docs.extend(batch.into_iter().map(|e| e.doc.clone()));
        }
        docs
    })
}

fn shaped(plugin: &dyn Plugin, mut doc: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let mut route = Route::default();
    plugin.process(&mut PluginEvent { doc: &mut doc, route: &mut route });
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_input_reads_a_bucket_once_and_remembers() {
    let (aws, client) = s3().await;
    let bucket = unique("trail");
    client.create_bucket().bucket(&bucket).send().await.unwrap_or_else(|e| panic!("create bucket {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14";
    put(&client, &bucket, &format!("{day}/111122223333_CloudTrail_us-east-1_20231114T2210Z_a.json.gz"), gz(&json!({"Records": [record("e1", "ListUsers", "alice"), record("e2", "CreateAccessKey", "alice")]}))).await;
    put(&client, &bucket, &format!("{day}/111122223333_CloudTrail_us-east-1_20231114T2215Z_b.json.gz"), gz(&json!({"Records": [record("e3", "DeleteTrail", "mallory")]}))).await;
    put(&client, &bucket, "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2023/11/14/digest.json.gz", gz(&json!({"digestStartTime": "x"}))).await;
    put(&client, &bucket, &format!("{day}/111122223333_CloudTrail_us-east-1_20231114T2220Z_c.json.gz"), b"not a log".to_vec()).await;
    put(&client, &bucket, "elsewhere/x.json.gz", gz(&json!({"Records": [record("e9", "Other", "x")]}))).await;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = CloudTrailInputConfig {
        dir: None,
        bucket: Some(bucket.clone()),
        prefix: "AWSLogs/".to_string(),
        aws,
        state_file: Some(state.to_str().unwrap().to_string()),
        once: true,
        ..CloudTrailInputConfig::dir("unused")
    };
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());

    let (ctx, rx, _trigger, metrics) = context();
    let stored = store_all(rx);
    let stats = tokio::time::timeout(Duration::from_secs(60), cloudtrail::run(&cfg, ctx)).await.expect("the input finished").unwrap();
    let docs = stored.await.unwrap();
    let plugin = CloudTrailPlugin::new(CloudTrailConfig::default());
    let summaries: Vec<String> = docs.into_iter().map(|d| shaped(&plugin, d)["summary"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        summaries,
        ["alice called iam.amazonaws.com ListUsers in us-east-1", "alice called iam.amazonaws.com CreateAccessKey in us-east-1", "mallory called iam.amazonaws.com DeleteTrail in us-east-1"]
    );
    assert_eq!(stats.invalid, 1, "the file that is not CloudTrail: {:?}", stats.errors);
    assert!(stats.errors[0].contains("_c.json.gz"), "{:?}", stats.errors);
    assert_eq!(metrics.get(Counter::EventsInvalid), 1);
    assert_eq!(std::fs::read_to_string(&state).unwrap().lines().count(), 2);

    // Again, from the state file: only the new file is read.
    put(&client, &bucket, &format!("{day}/111122223333_CloudTrail_us-east-1_20231114T2225Z_d.json.gz"), gz(&json!({"Records": [record("e4", "StopLogging", "mallory")]}))).await;
    let (ctx, rx, _trigger, _) = context();
    let stored = store_all(rx);
    let stats = tokio::time::timeout(Duration::from_secs(60), cloudtrail::run(&cfg, ctx)).await.expect("the input finished").unwrap();
    let docs = stored.await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["details"]["eventName"], "StopLogging");
    assert_eq!(stats.files_done, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_input_stops_on_a_missing_bucket_with_a_clear_error() {
    let (aws, _client) = s3().await;
    let cfg = CloudTrailInputConfig { dir: None, bucket: Some(unique("nosuch")), aws, once: true, ..CloudTrailInputConfig::dir("unused") };
    let (ctx, _rx, _trigger, _) = context();
    let e = tokio::time::timeout(Duration::from_secs(60), cloudtrail::run(&cfg, ctx)).await.expect("the input finished").unwrap_err();
    assert!(e.to_string().contains("NoSuchBucket"), "{e}");
    assert_eq!(e.retry(), rampart_core::Retry::Never);
}

/// Visible and in-flight messages.
async fn depth(client: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = client.get_queue_attributes().queue_url(url).attribute_names(A::ApproximateNumberOfMessages).attribute_names(A::ApproximateNumberOfMessagesNotVisible).send().await.unwrap();
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: A| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
    (n(A::ApproximateNumberOfMessages), n(A::ApproximateNumberOfMessagesNotVisible))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_input_deletes_only_stored_messages() {
    let (aws, client) = sqs_client().await;
    let (_, s3c) = s3().await;
    let bucket = unique("notify");
    s3c.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14/111122223333_CloudTrail_us-east-1_20231114T2210Z_n.json.gz";
    put(&s3c, &bucket, key, gz(&json!({"Records": [record("n1", "ConsoleLogin", "alice"), record("n2", "PutBucketPolicy", "alice")]}))).await;
    let queue = client.create_queue().queue_name(unique("q")).send().await.unwrap().queue_url.unwrap();

    let notification = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2023-11-14T22:15:01.000Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")}, "object": {"key": key, "size": 700}}}]});
    let finding = json!({
        "schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1", "id": "f1",
        "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/f1",
        "type": "UnauthorizedAccess:EC2/SSHBruteForce",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0a1b2c3d4e5f60718"}},
        "service": {"serviceName": "guardduty", "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {"connectionDirection": "INBOUND", "remoteIpDetails": {"ipAddressV4": "198.51.100.99"}}}},
        "severity": 2.0, "updatedAt": "2023-11-14T22:16:00.000Z",
        "title": "198.51.100.99 is performing SSH brute force attacks against i-0a1b2c3d4e5f60718."
    });
    let envelope = json!({"version": "0", "id": "eb-1", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "account": "111122223333", "time": "2023-11-14T22:16:00Z", "region": "us-east-1", "resources": [], "detail": finding});
    let sns_wrapped = json!({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Message": json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}).to_string()});
    // A notification for a file that is not there (yet): fetched again later, never deleted.
    let mut missing = notification.clone();
    missing["Records"][0]["s3"]["object"]["key"] = json!("AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14/missing.json.gz");
    for body in [notification.to_string(), envelope.to_string(), finding.to_string(), sns_wrapped.to_string(), "<<not json>>".to_string(), missing.to_string()] {
        client.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }

    let cfg = SqsConfig { aws, wait_time: Duration::from_secs(1), visibility_timeout: Some(Duration::from_secs(2)), drain_timeout: Duration::from_secs(5), ..SqsConfig::new(&queue) };
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let (ctx, rx, trigger, metrics) = context();
    let input = tokio::spawn(async move { sqs::run(&cfg, ctx).await });

    // The test's "output": fail the CloudTrail events the first time (an output is down),
    // store everything else.
    let plugin = GuardDutyPlugin::new(GuardDutyConfig::default());
    let mut cloudtrail_seen = Vec::new();
    let mut findings = Vec::new();
    let start = Instant::now();
    while cloudtrail_seen.len() < 4 || findings.len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out: cloudtrail {cloudtrail_seen:?}, findings {findings:?}");
        let Ok(batch) = tokio::time::timeout(Duration::from_secs(5), rx.recv_async()).await else { continue };
        for e in batch.unwrap() {
            if e.doc["source"] == "cloudtrail" {
                if cloudtrail_seen.len() < 2 {
                    e.ack.as_ref().unwrap().report(AckStatus::Errored, "store down");
                }
                cloudtrail_seen.push((e.id, e.doc["details"]["eventName"].as_str().unwrap().to_string()));
            } else {
                let doc = shaped(&plugin, e.doc.clone());
                findings.push((doc["summary"].as_str().unwrap().to_string(), doc["details"]["sourceipaddress"].clone()));
            }
        }
    }
    // Seen twice (redelivered after the failure), with the same ids both times.
    assert_eq!(cloudtrail_seen[0], cloudtrail_seen[2]);
    assert_eq!(cloudtrail_seen[1], cloudtrail_seen[3]);
    assert_eq!(cloudtrail_seen[0].1, "ConsoleLogin");
    for (summary, ip) in &findings {
        assert_eq!(summary, "198.51.100.99 is performing SSH brute force attacks against i-0a1b2c3d4e5f60718.");
        assert_eq!(ip, "198.51.100.99");
    }
    // Everything stored is deleted; the unreadable message stays for the redrive policy, and
    // the one whose file is missing stays to be tried again.
    let start = Instant::now();
    loop {
        let (visible, hidden) = depth(&client, &queue).await;
        if visible + hidden == 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "queue still holds {visible} visible + {hidden} in flight");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only the unreadable one counts as invalid (it may have been received more than once).
    let invalid = metrics.get(Counter::EventsInvalid);
    trigger.trigger();
    let stats = tokio::time::timeout(Duration::from_secs(30), input).await.expect("the input stopped").unwrap().unwrap();
    assert_eq!(stats.deleted, 4, "notification (second time), envelope, finding, test event: {stats:?}");
    assert!(stats.errors.iter().any(|e| e.contains("not JSON")), "{:?}", stats.errors);
    assert!(stats.errors.iter().any(|e| e.contains("NoSuchKey") && e.contains("missing.json.gz")), "{:?}", stats.errors);
    assert!(invalid >= 1 && invalid == stats.invalid, "invalid {invalid}, stats {stats:?}");
    assert!(stats.errors.iter().filter(|e| e.contains("not JSON")).count() as u64 == stats.invalid.min(20), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_input_stops_on_a_missing_queue_with_a_clear_error() {
    let (aws, _client) = sqs_client().await;
    let url = format!("{}/123456789012/{}", env_url("RAMPART_TEST_SQS_URL"), unique("nosuch"));
    let cfg = SqsConfig { aws, wait_time: Duration::from_secs(1), ..SqsConfig::new(url) };
    let (ctx, _rx, _trigger, _) = context();
    let e = tokio::time::timeout(Duration::from_secs(60), sqs::run(&cfg, ctx)).await.expect("the input finished").unwrap_err();
    assert!(e.to_string().contains("NonExistentQueue") || e.to_string().contains("QueueDoesNotExist"), "{e}");
}

/// The whole program: `rampart run --config` with a `cloudtrail` input on a bucket (read
/// once) and a file output, so the registry, the input wiring and the stop at the end of a
/// finite input are all on the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_run_reads_a_bucket_into_the_outputs() {
    let (_aws, client) = s3().await;
    let bucket = unique("runtrail");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    put(&client, &bucket, "AWSLogs/111122223333/CloudTrail/eu-west-1/2023/11/14/111122223333_CloudTrail_eu-west-1_20231114T2210Z_r.json.gz", gz(&json!({"Records": [record("r1", "CreateUser", "alice"), record("r2", "AttachUserPolicy", "alice")]}))).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("rampart.yml");
    std::fs::write(
        &config,
        format!(
            "inputs:\n  - type: cloudtrail\n    bucket: {bucket}\n    prefix: AWSLogs/\n    once: true\n    aws:\n      endpoint: {url}\n      force_path_style: true\n      access_key_id: testing\n      secret_access_key: testing\noutputs:\n  - type: file\n    dir: {data}\n",
            url = env_url("RAMPART_TEST_S3_URL"),
            data = data.display()
        ),
    )
    .unwrap();
    let bin = rampart_tests::rampart_bin();
    assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(bin).args(["run", "--config"]).arg(&config).env("RAMPART_LOG", "warn").output()).await.unwrap().unwrap();
    assert!(out.status.success(), "rampart run failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut events = Vec::new();
    for f in std::fs::read_dir(&data).unwrap().flatten().filter(|f| f.file_name().to_string_lossy().starts_with("events-")) {
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            events.push(serde_json::from_str::<Value>(line).unwrap());
        }
    }
    let mut names: Vec<String> = events.iter().map(|e| e["details"]["eventName"].as_str().unwrap_or_default().to_string()).collect();
    names.sort();
    assert_eq!(names, ["AttachUserPolicy", "CreateUser"], "{events:?}");
    assert!(events.iter().all(|e| e["source"] == "cloudtrail" && e["utctimestamp"] == "2023-11-14T22:13:20.000+00:00"), "{events:?}");
}
