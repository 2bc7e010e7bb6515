//! The dataflow end to end against librdkafka's mock cluster: events produced to Kafka show up
//! as widget values, expire when their window passes, and a widget added at runtime is
//! backfilled from history.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dataflow::pipeline::{Pipeline, PipelineConfig};
use dataflow::sink::SinkBatch;
use dataflow::time::now_ms;
use dataflow::widget::{WidgetCommand, WidgetKey, WidgetQuery};
use operators::registry::AggregationKind;
use operators::window_aggregate::{WindowChange, WindowSpec};
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use uuid::Uuid;

fn widget(
    metric: &str,
    filter: &[(&str, &str)],
    aggregation: AggregationKind,
    window_s: u64,
) -> WidgetQuery {
    WidgetQuery {
        key: WidgetKey {
            id: Uuid::new_v4(),
            generation: 1,
        },
        metric: metric.to_string(),
        filter: filter
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        spec: WindowSpec {
            aggregation,
            window_ms: window_s * 1_000,
        },
    }
}

/// Latest values seen at the sink, by widget.
struct Values {
    batches: mpsc::Receiver<SinkBatch>,
    latest: HashMap<WidgetKey, Option<f64>>,
}

impl Values {
    /// Waits until `key`'s value satisfies `check`, or panics after `timeout`.
    fn wait_for(&mut self, key: WidgetKey, timeout: Duration, check: impl Fn(Option<f64>) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.latest.get(&key).is_some_and(|v| check(*v)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {key:?}; latest {:?}",
                self.latest.get(&key)
            );
            if let Ok(batch) = self
                .batches
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                for update in batch.updates {
                    match update.change {
                        WindowChange::Value(value) => self.latest.insert(update.widget, value),
                        WindowChange::Removed => self.latest.remove(&update.widget),
                    };
                }
            }
        }
    }
}

#[test]
fn events_become_values_expire_and_backfill_new_widgets() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("metrics", 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();

    let count = widget("cpu", &[], AggregationKind::Count, 3);
    let max_a = widget("cpu", &[("host", "a")], AggregationKind::Max, 3);
    let (sender, batches) = mpsc::channel();
    let pipeline = Pipeline::start(
        PipelineConfig {
            brokers: brokers.clone(),
            topic: "metrics".into(),
            workers: 2,
            retention_ms: 60_000,
            grace_ms: 50,
            max_future_ms: 60_000,
            checkpoint_dir: None,
            checkpoint_interval_ms: 10_000,
            cluster: None,
        },
        vec![count.clone(), max_a.clone()],
        Arc::new(move |batch| {
            let _ = sender.send(batch);
        }),
    )
    .expect("pipeline starts");
    let mut values = Values {
        batches,
        latest: HashMap::new(),
    };

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let now = now_ms();
    let payload = format!(
        r#"[{{"metric_name":"cpu","value":3,"tags":{{"host":"a"}},"event_time":{now}}},
            {{"metric_name":"cpu","value":7,"tags":{{"host":"b"}},"event_time":{now}}},
            {{"metric_name":"cpu","value":1,"tags":{{"host":"a"}},"event_time":{now}}},
            {{"metric_name":"cpu","value":"bad"}}]"#
    );
    producer
        .send(BaseRecord::to("metrics").key("cpu").payload(&payload))
        .expect("queued");
    producer.flush(Duration::from_secs(5)).expect("flushed");

    values.wait_for(count.key, Duration::from_secs(10), |v| v == Some(3.0));
    values.wait_for(max_a.key, Duration::from_secs(10), |v| v == Some(3.0));

    // A widget added now sees the events already received.
    let sum = widget("cpu", &[], AggregationKind::Sum, 60);
    pipeline.control().send(WidgetCommand::Upsert(sum.clone()));
    values.wait_for(sum.key, Duration::from_secs(10), |v| v == Some(11.0));

    // Three seconds later the short windows are empty again.
    values.wait_for(count.key, Duration::from_secs(10), |v| v == Some(0.0));
    values.wait_for(max_a.key, Duration::from_secs(10), |v| v.is_none());
    values.wait_for(sum.key, Duration::from_secs(1), |v| v == Some(11.0));

    let stats = pipeline.stats();
    assert_eq!(
        stats
            .events_accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    let rejected: u64 = stats.rejected().iter().map(|(_, n)| n).sum();
    assert_eq!(rejected, 1);
    pipeline.shutdown(Duration::from_secs(5));
}
