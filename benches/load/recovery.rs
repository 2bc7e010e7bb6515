//! Scenario `recovery`: how long a crashed server takes from process start to its first
//! correct snapshot, for two amounts of history over the same panes.
//!
//! Each pass fills `--series` series with `density` events per series per second, oldest
//! second first, over the last `--retention-s` − 5 min (so nothing expires during the pass; half the
//! retention when that is shorter),
//! closed-loop as in `kafka`. Once a `count` widget (window 1 h) has counted every event and a
//! checkpoint has been written after that, the server is killed with `SIGKILL` and started
//! again with the same data directory and broker, `--restarts` times (each after a newer
//! checkpoint). The figures are the median (and the longest) time from that start until the
//! server listens and until `GET …/snapshot` first shows the exact count. Passes run at
//! `--recovery-base-density` (default 1) and at `--recovery-density` (default 3) over the same
//! panes; only the number of events in the window differs, which the restart should not
//! notice (it loads panes and replays only what came after the checkpoint's offsets). One
//! caveat: a pane of one sample is stored as that sample, smaller than a pane of several
//! (a full `PaneSet`), so density 1 makes a smaller state than density 2; from 2 on the panes,
//! and so the checkpoint, are the same whatever the density (`--recovery-base-density 2`).

use std::time::{Duration, Instant};

use crate::Options;
use crate::kafka::{CountWidget, fill_history};
use crate::producer::{Workload, now_ms};
use crate::server::{Target, control_client};
use crate::stats::Figures;

/// Runs both passes once; returns their figures, prefixed `d1_` and `dN_`.
pub async fn run(options: &Options) -> Figures {
    let mut figures = Figures::new();
    for density in [options.recovery_base_density, options.recovery_density] {
        for (name, value) in pass(options, density).await {
            figures.insert(format!("d{density}_{name}").leak(), value);
        }
    }
    figures
}

/// One fill, crash and restart at `density` events per series per second.
async fn pass(options: &Options, density: u64) -> Figures {
    let retention_s = options.retention_s;
    let options_series = options.series as u64;
    let mut target_options = options.target();
    target_options.extra_args.extend([
        "--retention".to_string(),
        format!("{retention_s}s"),
        "--checkpoint-interval".to_string(),
        "2s".to_string(),
    ]);
    let mut target = Target::start(&target_options);
    let http = control_client();
    let CountWidget {
        metric,
        dashboard,
        widget,
    } = CountWidget::create(&target, &http, "recovery", retention_s).await;
    let widget = &widget;

    // Fill the window.
    let workload = Workload::new(&metric, options.series, 100, options.events_per_record);
    let per_second = workload.blocks() as u64 * density;
    // Room for the whole pass before the oldest events leave the window.
    let margin_s = (retention_s / 2).min(300);
    let start_ms = now_ms() - (retention_s - margin_s) * 1_000;
    let started = Instant::now();
    let produced =
        fill_history(&target, workload, start_ms, per_second, options.in_flight).await as f64;
    let fill_s = started.elapsed().as_secs_f64();
    // The exact count as of a closed time: every event produced but those of the seconds that
    // left the window (a slow fill can outlast the margin). Each second holds `density` events
    // of every series, stamped at its middle.
    let window_ms = retention_s * 1_000;
    let expected = move |as_of: u64| {
        let first_s = start_ms / 1_000;
        let expired_s = match as_of.checked_sub(window_ms + 500) {
            Some(t) if t / 1_000 >= first_s => t / 1_000 - first_s + 1,
            _ => 0,
        };
        produced - (expired_s * density * options_series) as f64
    };

    // Every event counted, then a checkpoint that holds them all.
    let counted = wait_count(&target, &http, &dashboard, widget, expected, 300).await;
    assert!(
        counted.is_some(),
        "recovery: the server never counted the {produced} events produced"
    );
    let (_, counted_as_of) = target
        .try_snapshot(&http, &dashboard, widget)
        .await
        .expect("snapshot");
    let counted_as_of = counted_as_of.expect("as_of") as f64 / 1_000.0;
    // Crash and restart `--restarts` times, each after a checkpoint written after the last
    // start that reflects every event (its boundary is at or past the complete count's as-of:
    // a checkpoint written later may still reflect an older boundary while the writer or the
    // dataflow catches up, and replaying from there could need records the broker dropped).
    let mut listen = Vec::new();
    let mut correct = Vec::new();
    let mut checkpoint_bytes = 0.0;
    let rss_before = target.rss_bytes().unwrap_or(0);
    for _ in 0..options.restarts.max(1) {
        let since = now_ms() as f64 / 1_000.0;
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut scrape = target.metrics(&http).await;
        while scrape.get("flowboard_checkpoint_last_success_timestamp_seconds") <= since + 1.0
            || scrape.get("flowboard_checkpoint_last_boundary_timestamp_seconds") < counted_as_of
        {
            assert!(
                Instant::now() < deadline,
                "recovery: no checkpoint of every event within 300 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            scrape = target.metrics(&http).await;
        }
        checkpoint_bytes = scrape.get("flowboard_checkpoint_last_size_bytes");

        let restarted = Instant::now();
        listen.push(target.restart().as_secs_f64());
        let count = wait_count(&target, &http, &dashboard, widget, expected, 120).await;
        correct.push(restarted.elapsed().as_secs_f64());
        assert!(
            count.is_some(),
            "recovery: after a restart the count never reached {produced}"
        );
    }
    let scrape = target.metrics(&http).await;
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };

    let mut figures = Figures::new();
    figures.insert("events_in_window", produced);
    figures.insert("fill_s", fill_s);
    figures.insert("checkpoint_mb", checkpoint_bytes / 1e6);
    figures.insert("rss_mb_before_crash", rss_before as f64 / 1e6);
    figures.insert("restarts", correct.len() as f64);
    figures.insert("start_to_listen_s", median(&mut listen));
    figures.insert("start_to_correct_snapshot_s", median(&mut correct));
    figures.insert(
        "start_to_correct_snapshot_s_max",
        correct[correct.len() - 1],
    );
    figures.insert(
        "records_lost",
        scrape.sum("flowboard_kafka_records_lost_total"),
    );
    figures
}

/// Polls the widget until its value is `want(as_of)` (within `seconds`); the value then.
async fn wait_count(
    target: &Target,
    http: &reqwest::Client,
    dashboard: &str,
    widget: &str,
    want: impl Fn(u64) -> f64,
    seconds: u64,
) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Ok((Some(value), Some(as_of))) = target.try_snapshot(http, dashboard, widget).await
            && value == want(as_of)
        {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
