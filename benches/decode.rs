//! Micro benchmarks of event decoding ([`dataflow::event::decode`]): the first thing every HTTP
//! body and Kafka record goes through.
//!
//! Bodies are realistic: a metric name, a value, four tags, an event time as epoch
//! milliseconds or as an RFC 3339 string; single events and arrays of 100, one array with 10 %
//! bad events. Throughput is in events per second.
//!
//! `pre_aggregate` is the Kafka source's whole per-event path: decode a record of 100 events
//! over 10,000 series, find each event's series in the tick's map by a borrowed key, and add
//! the sample to its pane partials (every aggregation's). The difference from
//! `decode/borrowed/array_100` is the cost of pre-aggregation per event.
//!
//! ```text
//! cargo bench --bench decode              # full run
//! cargo bench --bench decode -- --quick   # a few seconds per case
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow::event::{decode, decode_each};
use dataflow::kafka_source::PendingPanes;
use dataflow::series::SeriesRef;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const METRICS: [&str; 4] = [
    "api.request.latency",
    "api.request.count",
    "host.cpu.utilization",
    "queue:orders:depth",
];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];

/// One event object, in one of the shapes producers send.
fn event(rng: &mut StdRng, rfc3339_time: bool) -> String {
    let metric = METRICS[rng.random_range(0..METRICS.len())];
    let value: f64 = rng.random_range(0.0..2_500.0);
    let host = rng.random_range(1..200);
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    let time = if rfc3339_time {
        format!(
            "\"2026-11-27T19:{:02}:{:02}.{:03}Z\"",
            rng.random_range(0..60),
            rng.random_range(0..60),
            rng.random_range(0..1_000)
        )
    } else {
        (1_796_000_000_000u64 + rng.random_range(0..3_600_000)).to_string()
    };
    let tags = format!(
        r#"{{"host": "web-{host}", "region": "{region}", "service": "checkout", "env": "prod"}}"#
    );
    let time = format!(r#""event_time": {time}"#);
    format!(r#"{{"metric_name": "{metric}", "value": {value:.3}, "tags": {tags}, {time}}}"#)
}

/// An event `decode` rejects: its value is not a number.
const BAD_EVENT: &str =
    r#"{"metric_name": "api.latency", "value": "high", "tags": {"host": "web-1"}}"#;

/// A JSON array of `count` events, every `bad_every`-th with a non-numeric value.
fn array(rng: &mut StdRng, count: usize, bad_every: Option<usize>) -> String {
    let events: Vec<String> = (0..count)
        .map(|i| match bad_every {
            Some(every) if i % every == every - 1 => BAD_EVENT.to_string(),
            _ => event(rng, false),
        })
        .collect();
    format!("[{}]", events.join(","))
}

fn decoding(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let cases: [(&str, u64, String); 5] = [
        ("single_epoch_ms", 1, event(&mut rng, false)),
        ("single_rfc3339", 1, event(&mut rng, true)),
        ("array_100", 100, array(&mut rng, 100, None)),
        ("array_100_rfc3339", 100, {
            let events: Vec<String> = (0..100).map(|_| event(&mut rng, true)).collect();
            format!("[{}]", events.join(","))
        }),
        ("array_100_10pct_bad", 100, array(&mut rng, 100, Some(10))),
    ];
    let mut group = c.benchmark_group("decode");
    for (name, events, body) in &cases {
        let decoded = decode(body.as_bytes());
        assert_eq!(
            decoded.len() as u64,
            *events,
            "{name}: every element decodes to a result"
        );
        let bad = decoded.iter().filter(|result| result.is_err()).count();
        assert_eq!(
            bad,
            if name.contains("bad") { 10 } else { 0 },
            "{name}: rejected events"
        );
        group.throughput(Throughput::Elements(*events));
        group.bench_with_input(BenchmarkId::new("precise", name), body, |b, body| {
            b.iter(|| black_box(decode(black_box(body.as_bytes()))))
        });
        // The Kafka source's path: borrowed events, no allocation per event.
        group.bench_with_input(BenchmarkId::new("borrowed", name), body, |b, body| {
            b.iter(|| {
                let mut sum = 0.0;
                decode_each(black_box(body.as_bytes()), |event| {
                    if let Ok(event) = event {
                        sum += event.value;
                    }
                });
                black_box(sum)
            })
        });
    }
    group.finish();
}

/// Records of 100 events over `series` series of one metric (tags `series`, `group`).
fn series_records(series: usize) -> Vec<String> {
    (0..series.div_ceil(100))
        .map(|block| {
            let events: Vec<String> = (0..100)
                .map(|j| {
                    let s = (block * 100 + j) % series;
                    format!(
                        r#"{{"metric_name":"bench.m","value":{}.5,"tags":{{"series":"s{s:05}","group":"g{:02}"}},"event_time":1796000000123}}"#,
                        s % 1000,
                        s % 100
                    )
                })
                .collect();
            format!("[{}]", events.join(","))
        })
        .collect()
}

/// Decode + series lookup + pane insert, as the Kafka source does per event: the source's own
/// [`PendingPanes`], every series already seen in the tick (its steady state).
fn pre_aggregate(c: &mut Criterion) {
    let records = series_records(10_000);
    let mut pending = PendingPanes::default();
    let add = |pending: &mut PendingPanes, record: &str| {
        decode_each(record.as_bytes(), |event| {
            let Ok(event) = event else { return };
            let series = SeriesRef {
                metric: &event.metric_name,
                tags: &event.tags,
            };
            let time = event.event_time.unwrap_or(0);
            pending.add(
                1_796_000_001_000,
                series,
                1_796_000_001_000,
                time,
                event.value,
            );
        });
    };
    for record in &records {
        add(&mut pending, record);
    }
    let mut group = c.benchmark_group("pre_aggregate");
    group.throughput(Throughput::Elements(100));
    let mut next = 0;
    group.bench_function("record_100_events_10k_series", |b| {
        b.iter(|| {
            next = (next + 1) % records.len();
            add(&mut pending, &records[next]);
        })
    });
    group.finish();
    black_box(pending.take_closed(u64::MAX).len());
}

criterion_group!(benches, decoding, pre_aggregate);
criterion_main!(benches);
