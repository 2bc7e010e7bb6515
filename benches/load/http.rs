//! Scenario `http`: `POST /ingest` with batches of events over several connections.
//!
//! Each of `--connections` clients holds one keep-alive connection and posts batches of
//! `--batch` events back to back (the next once the previous was answered `202`, i.e. Kafka
//! acknowledged it). Bodies are built once; events carry no `event_time`, so the server stamps
//! them on arrival as it would for most producers. Throughput is events answered `202` per
//! second over the measured time. A `count` widget then checks that the dataflow counted
//! every accepted event.
//!
//! The same server reads back everything it ingests, on the same cores. Unthrottled
//! (`--in-flight 0`) the ingest outruns the dataflow and the embedded broker drops what the
//! dataflow has not read yet (reported as `records_lost`); by default the clients hold back
//! while more than `--in-flight` accepted events wait to be decoded, so the figure is the rate
//! the whole path sustains.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::Options;
use crate::kafka::{CpuClock, unique_metric, wait_closed};
use crate::server::{Target, control_client};
use crate::stats::{Figures, Histogram};

/// Runs the scenario once; returns its figures.
pub async fn run(options: &Options) -> Figures {
    let target = Target::start(&options.target());
    let http = control_client();
    let metric = unique_metric("http");
    let (dashboard, widgets) = target
        .create_dashboard(
            &http,
            "load: http",
            vec![json!({"metric_name": metric, "aggregation": "count", "window_seconds": 3600})],
        )
        .await;
    let widget = &widgets[0];
    wait_closed(&target, &http, &dashboard, widget).await;

    let bodies = Arc::new(bodies(&metric, options.series, options.batch));
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Histogram::new());
    let measuring = Arc::new(AtomicU64::new(0)); // 1 while measuring
    let allowed = Arc::new(AtomicU64::new(u64::MAX));
    let posted = Arc::new(AtomicU64::new(0));
    let control = crate::kafka::flow_control(&target, allowed.clone(), options.in_flight);
    let end = Instant::now() + options.warmup() + options.duration();
    let clients: Vec<_> = (0..options.connections)
        .map(|c| {
            let (bodies, accepted, failed, latency, measuring) = (
                bodies.clone(),
                accepted.clone(),
                failed.clone(),
                latency.clone(),
                measuring.clone(),
            );
            let (allowed, posted) = (allowed.clone(), posted.clone());
            let url = target.url("/ingest");
            let batch = options.batch as u64;
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                let mut i = c;
                while Instant::now() < end {
                    if posted.load(Ordering::Relaxed) + batch > allowed.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    posted.fetch_add(batch, Ordering::Relaxed);
                    let body = bodies[i % bodies.len()].clone();
                    i += 1;
                    let sent = Instant::now();
                    let response = client.post(&url).body(body).send().await;
                    let ok = match response {
                        Ok(r) => {
                            let ok = r.status().as_u16() == 202;
                            let _ = r.bytes().await;
                            ok
                        }
                        Err(_) => false,
                    };
                    let counting = measuring.load(Ordering::Relaxed) == 1;
                    if ok {
                        if counting {
                            accepted.fetch_add(batch, Ordering::Relaxed);
                            latency.record(sent.elapsed().as_millis() as u64);
                        }
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(options.warmup()).await;
    let cpu = CpuClock::start(&target);
    let started = Instant::now();
    measuring.store(1, Ordering::SeqCst);
    tokio::time::sleep(options.duration()).await;
    measuring.store(2, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.stop(&target);
    for client in clients {
        let _ = client.await;
    }
    control.store(true, Ordering::SeqCst);

    // The dataflow must count everything accepted (warm-up included).
    let scrape = target.metrics(&http).await;
    let accepted_total = scrape.get("flowboard_events_accepted_total{path=\"http\"}");
    let drain = Instant::now();
    let mut counted = 0.0;
    while drain.elapsed() < Duration::from_secs(60) {
        counted = target
            .snapshot(&http, &dashboard, widget)
            .await
            .0
            .unwrap_or(0.0);
        if counted >= accepted_total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scrape = target.metrics(&http).await;

    let mut figures = Figures::new();
    figures.insert(
        "events_per_s_accepted",
        accepted.load(Ordering::SeqCst) as f64 / seconds,
    );
    figures.insert("requests_failed", failed.load(Ordering::SeqCst) as f64);
    figures.insert("request_ms_p50", latency.quantile(0.5).unwrap_or(0) as f64);
    figures.insert("request_ms_p99", latency.quantile(0.99).unwrap_or(0) as f64);
    figures.insert(
        "all_counted",
        f64::from(counted >= accepted_total && accepted_total > 0.0),
    );
    figures.insert("counted_drain_s", drain.elapsed().as_secs_f64());
    figures.insert(
        "records_lost",
        scrape.sum("flowboard_kafka_records_lost_total"),
    );
    cpu.record(&mut figures);
    figures
}

/// Request bodies: JSON arrays of `batch` events, together covering every series.
pub fn bodies(metric: &str, series: usize, batch: usize) -> Vec<bytes::Bytes> {
    let count = series.div_ceil(batch).max(1);
    (0..count)
        .map(|b| {
            let events: Vec<String> = (0..batch)
                .map(|j| {
                    let s = (b * batch + j) % series;
                    format!(
                        r#"{{"metric_name":"{metric}","value":{:.1},"tags":{{"series":"s{s:05}","group":"g{:02}"}}}}"#,
                        (s * 7 % 1000) as f64 / 10.0,
                        s % 100
                    )
                })
                .collect();
            bytes::Bytes::from(format!("[{}]", events.join(",")))
        })
        .collect()
}
