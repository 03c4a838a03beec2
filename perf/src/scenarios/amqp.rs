//! Scenario 5, `amqp`: RabbitMQ → the real `rampart` binary (AMQP input, the shipped rules,
//! the Elasticsearch output) → OpenSearch, all on this machine, at-least-once: Rampart acks a
//! message only once OpenSearch has stored every event in it.
//!
//! This process publishes persistent messages (one event each by default, as MozDef's
//! loginput did; `--batch N` puts N events in one NDJSON message) with publisher confirms,
//! flat out or open loop at `--rate`, to a queue of its own; Rampart's
//! `rampart_events_written_total` (from `/metrics` on an HTTP input added for the purpose)
//! gives stored events over time. Sustained events/s is stored events over the time from the
//! first to the last store; the engine's CPU per event is the dataflow workers' CPU
//! (`timely:work-*` threads of the rampart process) over stored events. At the end the
//! OpenSearch index is counted: every published event must be there exactly once (ids are
//! deterministic). The queue, exchanges, indices and templates it made are deleted.

use crate::cli::Args;
use crate::gen;
use crate::hist::Sampler;
use crate::measure;
use crate::pace::Schedule;
use crate::report::Report;
use crate::spawn::{self, Rampart, Scratch};
use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rampart_core::EventTime;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(id: &str, args: &Args, rules: &[PathBuf], port: u16) -> String {
    let rules: Vec<String> = rules.iter().map(|r| format!("  - \"{}\"", r.display())).collect();
    format!(
        "rules:\n{rules}\nengine:\n  workers: {w}\n  lateness: {late}ms\ninputs:\n  - type: amqp\n    url: \"{url}\"\n    exchange: \"{id}\"\n    exchange_type: direct\n    queue: \"{id}\"\n    routing_key: \"{id}\"\n    declare: true\n    durable: true\n    prefetch: 2000\n    dead_letter_exchange: \"{id}.dlx\"\n  - type: http\n    bind: \"127.0.0.1:{port}\"\n    workers: 1\noutputs:\n  - type: elasticsearch\n    url: \"{es}\"\n    events_index: \"{id}-events\"\n    alerts_index: \"{id}-alerts\"\n    dead_letter_index: \"{id}-dead\"\n    replicas: 0\n    bulk_max_docs: 2000\n    flush_interval: 50ms\n    in_flight: 4\n",
        rules = rules.join("\n"),
        w = args.workers,
        late = args.lateness_ms.unwrap_or(1000),
        url = args.amqp_url,
        es = args.es_url,
    )
}

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let bin = spawn::rampart_bin(args.rampart.as_deref())?;
    let scratch = Scratch::new("amqp")?;
    let port = spawn::free_port()?;
    let id = format!("perf-{}-{}", std::process::id(), EventTime::now().0);
    let rules: Vec<PathBuf> = if args.rules.is_empty() { vec![PathBuf::from("rules/library")] } else { args.rules.clone() };
    let rules: Vec<PathBuf> = rules.iter().map(|r| std::fs::canonicalize(r).with_context(|| format!("rules at {}", r.display()))).collect::<Result<_>>()?;
    let n = args.events.unwrap_or(200_000);
    let per_msg = args.batch.unwrap_or(1).max(1);
    let step = args.step_us.unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::new();
    let es = args.es_url.trim_end_matches('/').to_string();
    rt.block_on(async { http.get(&es).send().await.and_then(|r| r.error_for_status()) })
        .map_err(|e| anyhow!("OpenSearch is not reachable at {es} (--es-url / RAMPART_TEST_ES_URL): {e}. Start it with `bash scripts/services/opensearch.sh start`."))?;

    // Messages (NDJSON of `per_msg` events) before anything starts.
    let values = gen::mixed(args.seed, n, EventTime::now(), step);
    let mut bodies = Vec::with_capacity(n.div_ceil(per_msg));
    for chunk in values.chunks(per_msg) {
        let mut b = Vec::new();
        for v in chunk {
            serde_json::to_writer(&mut b, v)?;
            b.push(b'\n');
        }
        bodies.push(b);
    }
    drop(values);

    let addr = format!("127.0.0.1:{port}");
    let rampart = Rampart::start(&bin, &config(&id, args, &rules, port), &scratch.0, &addr)?;
    let written = |m: &str| spawn::metric(m, "rampart_events_written_total", None).unwrap_or(0.0) as u64;
    let a2 = addr.clone();
    let sampler = Sampler::start(Duration::from_millis(250), move || spawn::get(&a2, "/metrics").map(|m| written(&m)).unwrap_or(0));
    let published = Arc::new(AtomicU64::new(0));
    let cpu0 = rampart.cpu();
    let gen0 = measure::process_cpu();
    let t0 = Instant::now();

    let publish: Result<()> = rt.block_on(async {
        let conn = tokio::time::timeout(Duration::from_secs(10), Connection::connect(&args.amqp_url, ConnectionProperties::default()))
            .await
            .map_err(|_| anyhow!("RabbitMQ at {} (--amqp-url / RAMPART_TEST_AMQP_URL) did not answer in 10 s", rampart_connectors::redact_url(&args.amqp_url)))?
            .map_err(|e| anyhow!("RabbitMQ is not reachable at {} (--amqp-url / RAMPART_TEST_AMQP_URL): {e}. Start it with `bash scripts/services/rabbitmq.sh start`.", rampart_connectors::redact_url(&args.amqp_url)))?;
        // Rampart::start waited for GET /ready: the queue is declared, bound and consumed.
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let schedule = args.rate.map(|rate| Schedule::new(rate / per_msg as f64, Duration::from_millis(50)));
        let base = tokio::time::Instant::now();
        let base_ns = rampart_core::metrics::clock_ns();
        let mut confirms = FuturesUnordered::new();
        let mut nacked = 0u64;
        for (q, body) in bodies.iter().enumerate() {
            if let Some(s) = &schedule {
                tokio::time::sleep_until(base + Duration::from_nanos(s.due(q).saturating_sub(base_ns))).await;
            }
            let props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2).with_message_id(format!("{id}-{q}").into());
            let c = ch.basic_publish(id.as_str().into(), id.as_str().into(), BasicPublishOptions::default(), body, props).await?;
            confirms.push(c);
            published.fetch_add(body.iter().filter(|b| **b == b'\n').count() as u64, Ordering::Relaxed);
            while confirms.len() > 10_000 {
                if let Some(c) = confirms.next().await {
                    nacked += u64::from(!c?.is_ack());
                }
            }
        }
        while let Some(c) = confirms.next().await {
            nacked += u64::from(!c?.is_ack());
        }
        if nacked > 0 {
            bail!("the broker refused {nacked} messages");
        }
        let _ = conn.close(200, "perf done".into()).await;
        Ok(())
    });
    let publish_s = t0.elapsed().as_secs_f64();
    let gen_cpu = measure::process_cpu() - gen0;
    publish?;
    let n_pub = published.load(Ordering::Relaxed);
    // Wait until every event is stored (at most 10 minutes).
    let until = Instant::now() + Duration::from_secs(600);
    let mut m = String::new();
    while Instant::now() < until {
        m = rampart.metrics().unwrap_or_default();
        if written(&m) >= n_pub {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = rampart.cpu();
    let peak = rampart.peak_rss();
    let samples = sampler.finish_raw();
    let timeline = crate::hist::rates(&samples);
    let sustained = crate::hist::sustained(&samples);
    let stored = written(&m);
    rampart.stop()?;

    // Count what OpenSearch has, then clean up.
    let counted: Result<u64> = rt.block_on(async {
        http.post(format!("{es}/{id}-events*/_refresh")).send().await?;
        let v: Value = http.get(format!("{es}/{id}-events*/_count")).send().await?.json().await?;
        Ok(v["count"].as_u64().unwrap_or(0))
    });
    let counted = counted.unwrap_or(0);
    let _ = rt.block_on(cleanup(&http, &es, &id, &args.amqp_url));

    let mut r = Report::new("amqp");
    r.param("events", n as u64).param("events_per_message", per_msg as u64).param("workers", args.workers as u64).param("rate", args.rate.map_or(Value::from("flat out"), Value::from));
    r.param("rampart", bin.display().to_string()).param("opensearch", es.clone());
    let d = stored.max(1) as f64;
    r.result("events_published", n_pub)
        .result("events_stored", stored)
        .result("events_in_opensearch", counted)
        .result("exactly_once_in_index", counted == n_pub)
        .result("publish_seconds", publish_s)
        .result("wall_seconds", wall)
        .result("events_per_second", sustained)
        .result("events_per_second_overall", stored as f64 / wall)
        .result("rampart_cpu_us_per_event", (cpu.total - cpu0.total) / d * 1e6)
        .result("engine_cpu_us_per_event", (cpu.named - cpu0.named) / d * 1e6)
        .result("loadgen_cpu_seconds", gen_cpu)
        .result("rampart_peak_rss_mib", peak as f64 / 1048576.0)
        .result("alerts", spawn::metric(&m, "rampart_alerts_fired_total", None).unwrap_or(0.0))
        .result("rampart_accept_to_written", spawn::summary_ms(&m, "rampart_accept_to_written_seconds"))
        .result("rampart_accept_to_alert", spawn::summary_ms(&m, "rampart_accept_to_alert_seconds"));
    r.timeline = timeline;
    r.notes.push("events_per_second = sustained rate of events stored in OpenSearch (acks after store), from the first store to the last (index creation at the first write excluded); events_per_second_overall counts from the first publish; latencies are Rampart's own (from acceptance, /metrics)".into());
    r.finish(&args.out_path("amqp"))
}

/// Deletes the queue, exchanges, indices and templates of run `id`.
async fn cleanup(http: &reqwest::Client, es: &str, id: &str, amqp: &str) -> Result<()> {
    for idx in ["events", "alerts", "dead"] {
        let _ = http.delete(format!("{es}/{id}-{idx}*")).send().await;
        let _ = http.delete(format!("{es}/_index_template/{id}-{idx}")).send().await;
    }
    let conn = Connection::connect(amqp, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    for q in [id.to_string(), format!("{id}.dlx")] {
        let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        let _ = ch.exchange_delete(q.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "perf cleanup".into()).await;
    Ok(())
}
