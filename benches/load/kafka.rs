//! Scenario `kafka`: events produced to the topic and reflected in aggregates, and the
//! ceilings measured on the same machine in the same run: a bare rdkafka consumer reading the
//! same topic, and bare decoding of the same records.
//!
//! One `count` widget (window 1 h, longer than the run, no filter) counts the benchmark's
//! metric over all its series; its value as of the closed time T is the number of events with
//! `event_time <= T` the dataflow has aggregated. The producer runs closed-loop by default: it
//! keeps at most `--in-flight` events produced but not yet decoded by the server (read from
//! `/metrics`), so it goes as fast as the server sustains without a backlog the embedded
//! broker would drop. Throughput is the growth of the count over the measured wall time; the
//! watermark lag (wall clock minus the value's as-of) at both ends shows it was sustained.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::json;

use crate::Options;
use crate::producer::{LoadProducer, Pace, Stamp, Workload, now_ms, partitions};
use crate::server::{Target, control_client};
use crate::stats::Figures;

pub const TOPIC: &str = "metrics";

/// Runs the scenario once; returns its figures.
pub async fn run(options: &Options) -> Figures {
    let target = Target::start(&options.target());
    let http = control_client();
    let CountWidget {
        metric,
        dashboard,
        widget,
    } = CountWidget::create(&target, &http, "kafka", 3_600).await;
    let widget = &widget;

    let partitions = partitions(&target.brokers, TOPIC);
    let workload = Workload::new(&metric, options.series, 100, options.events_per_record);
    let producer = LoadProducer::start(
        &target.brokers,
        TOPIC,
        partitions,
        workload,
        Stamp::Now,
        Pace {
            rate: options.rate,
            limit: None,
        },
    );
    let control = flow_control(&target, producer.state.allowed.clone(), options.in_flight);

    tokio::time::sleep(options.warmup()).await;
    let cpu = CpuClock::start(&target);
    let (start_value, start_as_of) = target.snapshot(&http, &dashboard, widget).await;
    let (t1, produced1) = (now_ms(), producer.state.produced.load(Ordering::Relaxed));
    tokio::time::sleep(options.duration()).await;
    let (end_value, end_as_of) = target.snapshot(&http, &dashboard, widget).await;
    let (t2, produced2) = (now_ms(), producer.state.produced.load(Ordering::Relaxed));
    let cpu = cpu.stop(&target);
    control.store(true, Ordering::SeqCst);
    let total = producer.stop();

    // Every event produced must end up counted, once.
    let drain_started = Instant::now();
    let mut counted = 0.0;
    while drain_started.elapsed() < Duration::from_secs(60) {
        counted = target
            .snapshot(&http, &dashboard, widget)
            .await
            .0
            .unwrap_or(0.0);
        if counted >= total as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scrape = target.metrics(&http).await;

    let seconds = (t2 - t1) as f64 / 1_000.0;
    let mut figures = Figures::new();
    let reflected = end_value.unwrap_or(0.0) - start_value.unwrap_or(0.0);
    figures.insert("events_per_s_reflected", reflected / seconds);
    figures.insert(
        "events_per_s_produced",
        (produced2 - produced1) as f64 / seconds,
    );
    figures.insert("watermark_lag_start_s", lag(t1, start_as_of));
    figures.insert("watermark_lag_end_s", lag(t2, end_as_of));
    figures.insert("measured_s", seconds);
    figures.insert("events_total", total as f64);
    figures.insert("events_counted", counted);
    figures.insert("all_counted", f64::from(counted == total as f64));
    figures.insert(
        "records_lost",
        scrape.sum("flowboard_kafka_records_lost_total"),
    );
    figures.insert("events_late", scrape.get("flowboard_events_late_total"));
    cpu.record(&mut figures);

    if !options.no_ceilings {
        let ceiling = raw_consume(
            &target.brokers,
            partitions,
            options.workers,
            options.ceiling_time(),
        );
        let decode = raw_decode(&metric, options, options.ceiling_time());
        let ours = figures["events_per_s_reflected"];
        figures.insert(
            "ceiling_consume_events_per_s",
            ceiling * options.events_per_record as f64,
        );
        figures.insert("ceiling_consume_records_per_s", ceiling);
        figures.insert("ceiling_decode_events_per_s", decode.0);
        figures.insert("ceiling_json_parse_events_per_s", decode.1);
        figures.insert(
            "ratio_to_consume",
            ours / (ceiling * options.events_per_record as f64),
        );
        figures.insert("ratio_to_decode", ours / decode.0);
    }
    figures
}

fn lag(now: u64, as_of: Option<u64>) -> f64 {
    as_of.map_or(f64::NAN, |t| now.saturating_sub(t) as f64 / 1_000.0)
}

/// A metric of the benchmark's own (a fresh name per run) and one dashboard with a `count`
/// widget over all its series: what `kafka`, `state` and `recovery` watch.
pub struct CountWidget {
    pub metric: String,
    pub dashboard: String,
    pub widget: String,
}

impl CountWidget {
    /// Creates it, with a window of `window_s`, and waits until the dataflow closes times.
    pub async fn create(
        target: &Target,
        http: &reqwest::Client,
        scenario: &str,
        window_s: u64,
    ) -> CountWidget {
        let metric = unique_metric(scenario);
        let (dashboard, widgets) = target
            .create_dashboard(
                http,
                &format!("load: {scenario}"),
                vec![json!({"metric_name": metric, "aggregation": "count", "window_seconds": window_s})],
            )
            .await;
        let widget = widgets.into_iter().next().expect("one widget");
        wait_closed(target, http, &dashboard, &widget).await;
        CountWidget {
            metric,
            dashboard,
            widget,
        }
    }
}

/// `bench.<scenario>.<8 hex digits>`: a metric no earlier run wrote to.
pub fn unique_metric(scenario: &str) -> String {
    format!(
        "bench.{scenario}.{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Produces history (`Stamp::History` from `start_ms`, `per_second` records per second of
/// event time) closed-loop until it reaches the present; returns the events produced.
pub async fn fill_history(
    target: &Target,
    workload: Workload,
    start_ms: u64,
    per_second: u64,
    in_flight: u64,
) -> u64 {
    let partitions = partitions(&target.brokers, TOPIC);
    let producer = LoadProducer::start(
        &target.brokers,
        TOPIC,
        partitions,
        workload,
        Stamp::History {
            start_ms,
            per_second,
        },
        Pace {
            rate: None,
            limit: None,
        },
    );
    let control = flow_control(target, producer.state.allowed.clone(), in_flight);
    while !producer.state.done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    control.store(true, Ordering::SeqCst);
    producer.stop()
}

/// Waits until the widget has a value as of a closed time (the dataflow runs).
pub async fn wait_closed(target: &Target, http: &reqwest::Client, dashboard: &str, widget: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let (Some(_), Some(as_of)) = target.snapshot(http, dashboard, widget).await
            && as_of + 5_000 > now_ms()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dataflow did not close a time within 60 s");
}

/// Keeps the producer at most `in_flight` events ahead of what the server decoded; returns the
/// flag that stops it.
pub fn flow_control(target: &Target, allowed: Arc<AtomicU64>, in_flight: u64) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    if in_flight == 0 {
        return stop;
    }
    allowed.store(in_flight, Ordering::SeqCst);
    let flag = stop.clone();
    let urls: Vec<String> = target
        .bases
        .iter()
        .map(|b| format!("{b}/metrics"))
        .collect();
    tokio::spawn(async move {
        let http = control_client();
        let target_decoded = "flowboard_events_accepted_total{path=\"kafka\"}";
        let rejected = "flowboard_events_rejected_total";
        let base = Arc::new(AtomicU64::new(u64::MAX));
        while !flag.load(Ordering::Relaxed) {
            // Summed over every process (each of a cluster decodes its own partitions).
            let mut decoded = Some(0.0);
            for url in &urls {
                let text = match http.get(url).send().await {
                    Ok(response) => response.text().await.ok(),
                    Err(_) => None,
                };
                let Some(text) = text else {
                    decoded = None;
                    break;
                };
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix(target_decoded) {
                        *decoded.as_mut().expect("some") +=
                            value.trim().parse::<f64>().unwrap_or(0.0);
                    } else if line.starts_with(rejected) && line.contains("path=\"kafka\"") {
                        *decoded.as_mut().expect("some") += line
                            .rsplit(' ')
                            .next()
                            .and_then(|v| v.parse::<f64>().ok())
                            .unwrap_or(0.0);
                    }
                }
            }
            if let Some(decoded) = decoded {
                // Events counted before this run (other workloads) do not open the window.
                let decoded = decoded as u64;
                let first = base.load(Ordering::Relaxed);
                if first == u64::MAX {
                    base.store(decoded, Ordering::Relaxed);
                }
                let ours = decoded.saturating_sub(base.load(Ordering::Relaxed));
                allowed.store(ours + in_flight, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    stop
}

/// Cores used (CPU seconds per wall second) by the server, the broker and this process over a
/// measured interval.
pub struct CpuClock {
    server: Option<f64>,
    broker: Option<f64>,
    own: f64,
    started: Instant,
}

/// What [`CpuClock::stop`] measured.
pub struct CoresUsed {
    server: f64,
    broker: f64,
    own: f64,
}

impl CpuClock {
    pub fn start(target: &Target) -> CpuClock {
        CpuClock {
            server: Target::cpu_seconds_of(&target.pids),
            broker: Target::cpu_seconds(target.broker_pid),
            own: own_cpu_seconds(),
            started: Instant::now(),
        }
    }

    pub fn stop(self, target: &Target) -> CoresUsed {
        let wall = self.started.elapsed().as_secs_f64();
        let used = |before: Option<f64>, now: Option<f64>| match (before, now) {
            (Some(a), Some(b)) => (b - a) / wall,
            _ => f64::NAN,
        };
        CoresUsed {
            server: used(self.server, Target::cpu_seconds_of(&target.pids)),
            broker: used(self.broker, Target::cpu_seconds(target.broker_pid)),
            own: (own_cpu_seconds() - self.own) / wall,
        }
    }
}

impl CoresUsed {
    /// Adds the figures.
    pub fn record(&self, figures: &mut Figures) {
        figures.insert("cores_server", self.server);
        figures.insert("cores_broker", self.broker);
        figures.insert("cores_loadgen", self.own);
    }
}

fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// Records per second a bare consumer (flowboard's consumer settings, no decoding) reads from
/// the topic, with `threads` consumers splitting the partitions as the workers do, re-reading
/// what the broker holds for about `time`.
pub fn raw_consume(brokers: &str, partitions: i32, threads: usize, time: Duration) -> f64 {
    let handles: Vec<_> = (0..threads)
        .map(|worker| {
            let brokers = brokers.to_string();
            std::thread::spawn(move || {
                let mine: Vec<i32> = (0..partitions)
                    .filter(|p| *p as usize % threads == worker)
                    .collect();
                if mine.is_empty() {
                    return 0.0;
                }
                let consumer: BaseConsumer = dataflow::kafka_source::consumer_config(&brokers)
                    .set("client.id", "flowboard-load-ceiling")
                    .create()
                    .expect("consumer");
                // The clock starts at the first record (connecting is not consuming), and
                // each pass re-assigns the partitions from their beginning (what the broker
                // still holds) and reads them to their end.
                let mut records = 0u64;
                let mut first: Option<Instant> = None;
                let connect_deadline = Instant::now() + Duration::from_secs(30);
                let done = |first: Option<Instant>| match first {
                    Some(first) => first.elapsed() >= time,
                    None => Instant::now() >= connect_deadline,
                };
                while !done(first) {
                    let mut assignment = TopicPartitionList::new();
                    for p in &mine {
                        assignment
                            .add_partition_offset(TOPIC, *p, Offset::Beginning)
                            .expect("assignment");
                    }
                    consumer.assign(&assignment).expect("assign");
                    let mut at_end = std::collections::HashSet::new();
                    while at_end.len() < mine.len() && !done(first) {
                        match consumer.poll(Duration::from_millis(100)) {
                            Some(Ok(message)) => {
                                std::hint::black_box(message.payload());
                                first.get_or_insert_with(Instant::now);
                                records += 1;
                            }
                            Some(Err(KafkaError::PartitionEOF(p))) => {
                                at_end.insert(p);
                            }
                            Some(Err(error)) => panic!("ceiling consumer: {error}"),
                            None => {}
                        }
                    }
                }
                first.map_or(0.0, |first| records as f64 / first.elapsed().as_secs_f64())
            })
        })
        .collect();
    // The threads run side by side: their rates add up.
    handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
}

/// Events per second that `threads` threads decode from the benchmark's records with
/// flowboard's decoder (`decode_each`), and that they merely parse as JSON (serde_json, values
/// skipped).
pub fn raw_decode(metric: &str, options: &Options, time: Duration) -> (f64, f64) {
    let mut workload = Workload::new(metric, options.series, 100, options.events_per_record);
    let records = Arc::new(workload.all(now_ms()));
    let per_record = options.events_per_record as u64;
    let rate = |parse_only: bool| {
        let started = Instant::now();
        let handles: Vec<_> = (0..options.workers)
            .map(|_| {
                let records = records.clone();
                std::thread::spawn(move || {
                    let mut events = 0u64;
                    while started.elapsed() < time {
                        for record in records.iter() {
                            if parse_only {
                                let parsed: Result<serde::de::IgnoredAny, _> =
                                    serde_json::from_slice(record);
                                std::hint::black_box(parsed.is_ok());
                                events += per_record;
                            } else {
                                dataflow::event::decode_each(record, |event| {
                                    std::hint::black_box(event.is_ok());
                                    events += 1;
                                });
                            }
                        }
                    }
                    events
                })
            })
            .collect();
        let events: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        events as f64 / started.elapsed().as_secs_f64()
    };
    (rate(false), rate(true))
}
