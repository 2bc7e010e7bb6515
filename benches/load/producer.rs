//! The Kafka load: records of ~100 JSON events over a fixed set of series, produced with a real
//! rdkafka producer from a thread of its own, paced at a rate or as fast as the server keeps up.
//!
//! Record values are built once as templates (one JSON array of events per block of series)
//! with a fixed-width `event_time`, which is patched in place when the record is sent: the
//! generator costs a copy per record, not a JSON serialization. An event's `event_time` is the
//! wall clock when its record is handed to the producer (its *send time*), unless a workload
//! stamps history. Records go to the topic's partitions in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The wall clock, epoch milliseconds.
pub fn now_ms() -> u64 {
    dataflow::time::now_ms()
}

/// Record values for `series` series of `metric`, `per_record` events each.
pub struct Workload {
    /// One value per block of series: record bytes and the offsets of its event times.
    templates: Vec<(Vec<u8>, Vec<usize>)>,
    pub per_record: usize,
}

/// Digits of an epoch-millisecond time until the year 2286.
const TIME_DIGITS: usize = 13;

impl Workload {
    /// Events `{"metric_name": metric, "value", "tags": {"series": "s00042", "group": "g42"},
    /// "event_time"}`; series `i` is in group `i % groups`.
    pub fn new(metric: &str, series: usize, groups: usize, per_record: usize) -> Workload {
        let blocks = series.div_ceil(per_record);
        let templates = (0..blocks)
            .map(|block| {
                let mut bytes = b"[".to_vec();
                let mut times = Vec::with_capacity(per_record);
                for j in 0..per_record {
                    let s = (block * per_record + j) % series;
                    if j > 0 {
                        bytes.push(b',');
                    }
                    let value = (s * 7 % 1000) as f64 / 10.0;
                    let head = format!(
                        r#"{{"metric_name":"{metric}","value":{value:.1},"tags":{{"series":"s{s:05}","group":"g{:02}"}},"event_time":"#,
                        s % groups.max(1)
                    );
                    bytes.extend_from_slice(head.as_bytes());
                    times.push(bytes.len());
                    bytes.extend_from_slice(&[b'0'; TIME_DIGITS]);
                    bytes.push(b'}');
                }
                bytes.push(b']');
                (bytes, times)
            })
            .collect();
        Workload {
            templates,
            per_record,
        }
    }

    /// Records per pass over every series.
    pub fn blocks(&self) -> usize {
        self.templates.len()
    }

    /// Record `index` (block `index % blocks`) with every event stamped `time`.
    pub fn record(&mut self, index: u64, time: u64) -> &[u8] {
        let at = (index % self.templates.len() as u64) as usize;
        let (bytes, times) = &mut self.templates[at];
        let digits = format!("{time:013}");
        for &offset in times.iter() {
            bytes[offset..offset + TIME_DIGITS].copy_from_slice(digits.as_bytes());
        }
        bytes
    }

    /// Every template once, stamped `time` (for decode ceilings).
    pub fn all(&mut self, time: u64) -> Vec<Vec<u8>> {
        (0..self.blocks() as u64)
            .map(|i| self.record(i, time).to_vec())
            .collect()
    }
}

/// When each record's events are stamped.
pub enum Stamp {
    /// The send time.
    Now,
    /// History: record `i` is in second `start_ms / 1000 + i / per_second` (its middle);
    /// production stops once that second is in the future.
    History { start_ms: u64, per_second: u64 },
}

/// How fast to produce.
pub struct Pace {
    /// Events per second; `None`: as fast as allowed.
    pub rate: Option<f64>,
    /// Stop once this many events were produced (`None`: until stopped).
    pub limit: Option<u64>,
}

/// Shared with the producing thread.
#[derive(Default)]
pub struct ProduceState {
    /// Events handed to the producer.
    pub produced: AtomicU64,
    /// Events the broker acknowledged.
    pub acked: AtomicU64,
    /// Events the producer may have handed out so far (flow control); `u64::MAX`: no limit.
    pub allowed: Arc<AtomicU64>,
    pub stop: AtomicBool,
    /// Set by the thread when it is done (stopped, limit, or history caught up).
    pub done: AtomicBool,
}

/// A producing thread.
pub struct LoadProducer {
    pub state: Arc<ProduceState>,
    thread: Option<JoinHandle<()>>,
}

/// The producer's settings: batched, compressed, one broker acknowledgement.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("acks", "1")
        .set("queue.buffering.max.kbytes", "524288")
        .set("client.id", "flowboard-load");
    config
}

/// Serves the producer's delivery reports, then sleeps for `pause`. Not `poll(pause)`: with a
/// timeout of a millisecond rdkafka's poll loop spins on the clock instead of waiting (`perf`:
/// 87 % of a core at 100,000 events/s), a core the server under test then lacked.
fn idle(producer: &BaseProducer<AckCounter>, pause: Duration) {
    producer.poll(Duration::ZERO);
    std::thread::sleep(pause);
}

impl LoadProducer {
    /// Starts producing `workload` to `topic`'s `partitions`.
    pub fn start(
        brokers: &str,
        topic: &str,
        partitions: i32,
        mut workload: Workload,
        stamp: Stamp,
        pace: Pace,
    ) -> LoadProducer {
        let state = Arc::new(ProduceState::default());
        state.allowed.store(u64::MAX, Ordering::SeqCst);
        let producer: BaseProducer<AckCounter> = producer_config(brokers)
            .create_with_context(AckCounter {
                state: state.clone(),
                per_record: workload.per_record as u64,
            })
            .expect("Kafka producer");
        let topic = topic.to_string();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("load-producer".into())
            .spawn(move || {
                let started = Instant::now();
                let per_record = workload.per_record as u64;
                let mut index: u64 = 0;
                let mut next_poll = Instant::now();
                while !shared.stop.load(Ordering::Relaxed) {
                    let produced = index * per_record;
                    if pace.limit.is_some_and(|limit| produced >= limit) {
                        break;
                    }
                    let due = pace.rate.map_or(u64::MAX, |rate| {
                        (rate * started.elapsed().as_secs_f64()) as u64
                    });
                    if produced >= due || produced >= shared.allowed.load(Ordering::Relaxed) {
                        idle(&producer, Duration::from_millis(1));
                        continue;
                    }
                    let time = match &stamp {
                        Stamp::Now => now_ms(),
                        Stamp::History {
                            start_ms,
                            per_second,
                        } => {
                            let second = start_ms / 1_000 + index / per_second;
                            if second * 1_000 > now_ms() {
                                break;
                            }
                            second * 1_000 + 500
                        }
                    };
                    let payload = workload.record(index, time);
                    let partition = (index % partitions as u64) as i32;
                    let mut record = BaseRecord::<(), [u8]>::to(&topic)
                        .partition(partition)
                        .payload(payload);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                back,
                            )) => {
                                record = back;
                                idle(&producer, Duration::from_millis(5));
                            }
                            Err((error, _)) => panic!("producing: {error}"),
                        }
                    }
                    index += 1;
                    shared.produced.store(index * per_record, Ordering::Relaxed);
                    if Instant::now() >= next_poll {
                        producer.poll(Duration::ZERO);
                        next_poll = Instant::now() + Duration::from_millis(5);
                    }
                }
                let _ = producer.flush(Duration::from_secs(30));
                shared.done.store(true, Ordering::SeqCst);
            })
            .expect("producer thread");
        LoadProducer {
            state,
            thread: Some(thread),
        }
    }

    /// Stops producing, flushes, and waits for the thread.
    pub fn stop(mut self) -> u64 {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.state.produced.load(Ordering::SeqCst)
    }
}

impl Drop for LoadProducer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Counts acknowledged events.
pub struct AckCounter {
    state: Arc<ProduceState>,
    per_record: u64,
}

impl rdkafka::ClientContext for AckCounter {}

impl rdkafka::producer::ProducerContext for AckCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.state
                    .acked
                    .fetch_add(self.per_record, Ordering::Relaxed);
            }
            Err((error, _)) => eprintln!("delivery failed: {error}"),
        }
    }
}

/// The partitions of `topic`.
pub fn partitions(brokers: &str, topic: &str) -> i32 {
    dataflow::pipeline::topic_partitions(brokers, topic)
        .expect("topic metadata")
        .len() as i32
}
