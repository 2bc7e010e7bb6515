//! Scenario `state`: the memory the server needs for `--series` series with every one-second
//! pane of the retention (1 h) filled.
//!
//! History is produced oldest second first, one event per series per second, from
//! `retention − 5 s` ago up to the present (closed-loop, as in `kafka`), so at the end every
//! series has a pane in each second of the last hour (panes older than that have expired). The
//! figure is the server's RSS then, minus its RSS before any event; a `count` widget (window
//! 1 h) over the metric checks that the hour was counted. The fill is a burst at the server's
//! full speed, which leaves transient memory behind (checkpoint pieces of millions of panes,
//! buffers freed but not yet returned by the allocator): the RSS is measured again after
//! `--settle-s` seconds without events, the `_settled` figures, which is what holding the
//! state costs once the burst is over.

use std::time::{Duration, Instant};

use crate::Options;
use crate::kafka::{CountWidget, fill_history};
use crate::producer::{Workload, now_ms};
use crate::server::{Target, control_client};
use crate::stats::Figures;

/// Runs the scenario once; returns its figures.
pub async fn run(options: &Options) -> Figures {
    let retention_s = options.retention_s;
    let mut target_options = options.target();
    target_options
        .extra_args
        .extend(["--retention".to_string(), format!("{retention_s}s")]);
    let target = Target::start(&target_options);
    let http = control_client();
    let CountWidget {
        metric,
        dashboard,
        widget,
    } = CountWidget::create(&target, &http, "state", retention_s).await;
    let widget = &widget;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_empty = target.rss_bytes().unwrap_or(0);

    let workload = Workload::new(&metric, options.series, 100, options.events_per_record);
    let per_second = workload.blocks() as u64;
    let started = Instant::now();
    let start_ms = now_ms() - (retention_s - 5) * 1_000;
    let produced = fill_history(&target, workload, start_ms, per_second, options.in_flight).await;
    let fill_s = started.elapsed().as_secs_f64();
    // Let the watermark pass the last events, and the allocator settle.
    tokio::time::sleep(options.warmup() + Duration::from_secs(2)).await;
    let (count, _) = target.snapshot(&http, &dashboard, widget).await;
    let rss_full = target.rss_bytes().unwrap_or(0);
    let scrape = target.metrics(&http).await;
    tokio::time::sleep(Duration::from_secs(options.settle_s)).await;
    let rss_settled = target.rss_bytes().unwrap_or(0);

    let full = (options.series as u64 * retention_s) as f64;
    let mut figures = Figures::new();
    figures.insert("events_produced", produced as f64);
    figures.insert("fill_s", fill_s);
    figures.insert("fill_events_per_s", produced as f64 / fill_s);
    figures.insert("window_count", count.unwrap_or(0.0));
    figures.insert("window_filled_pct", count.unwrap_or(0.0) / full * 100.0);
    figures.insert("rss_mb_empty", rss_empty as f64 / 1e6);
    figures.insert("rss_mb_full", rss_full as f64 / 1e6);
    figures.insert("state_mb", rss_full.saturating_sub(rss_empty) as f64 / 1e6);
    figures.insert(
        "state_bytes_per_pane",
        rss_full.saturating_sub(rss_empty) as f64 / full,
    );
    figures.insert("rss_mb_settled", rss_settled as f64 / 1e6);
    figures.insert(
        "state_mb_settled",
        rss_settled.saturating_sub(rss_empty) as f64 / 1e6,
    );
    figures.insert(
        "state_bytes_per_pane_settled",
        rss_settled.saturating_sub(rss_empty) as f64 / full,
    );
    figures.insert(
        "checkpoint_mb",
        scrape.get("flowboard_checkpoint_last_size_bytes") / 1e6,
    );
    figures.insert(
        "records_lost",
        scrape.sum("flowboard_kafka_records_lost_total"),
    );
    figures.insert(
        "events_too_old",
        scrape.get("flowboard_events_rejected_total{path=\"kafka\",reason=\"too_old\"}"),
    );
    figures
}
