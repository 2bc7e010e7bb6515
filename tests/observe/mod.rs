//! Support for the observability tests: scraping and reading `/metrics`, `promtool check
//! metrics`, waiting for `/readyz` (the broker process to take down and up is [`crate::common::Broker`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, get, http};

/// How long to wait for a scrape to show something.
pub const WAIT: Duration = Duration::from_secs(20);

/// One scrape of `/metrics`: the text, and every sample by its series (`name{a="x",b="y"}`
/// with labels in name order, or just `name`).
pub struct Scrape {
    /// The exposition.
    pub text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// Scrapes `server`.
    pub async fn of(server: &Server) -> Scrape {
        let response = http()
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.expect("body");
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((normalize(series), value.parse().ok()?))
            })
            .collect();
        Scrape { text, samples }
    }

    /// The sample of `name` with `labels`; 0 when absent (a labelled series not yet created).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels = labels.to_vec();
        labels.sort();
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", inner.join(","))
        };
        self.samples.get(&series).copied().unwrap_or(0.0)
    }

    /// Every sample of `name`, whatever its labels.
    pub fn all(&self, name: &str) -> Vec<(&str, f64)> {
        self.samples
            .iter()
            .filter(|(series, _)| {
                series
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('{'))
            })
            .map(|(series, value)| (series.as_str(), *value))
            .collect()
    }
}

/// `name{b="2",a="1"}` → `name{a="1",b="2"}` (label values here hold no commas or quotes).
fn normalize(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let mut labels: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Scrapes until `check` holds; panics with the last scrape after [`WAIT`].
pub async fn scrape_until(server: &Server, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = Scrape::of(server).await;
        if check(&scrape) {
            return scrape;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; last scrape:\n{}",
                scrape.text
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `promtool check metrics` on an exposition; skipped (with a notice) without promtool.
pub fn promtool_check_metrics(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            eprintln!(
                "NOTICE: promtool not found ({error}); skipping `promtool check metrics` \
                 (scripts/test installs it: apt-get install prometheus)"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `/readyz` until it says `ready` (or not); returns the last body.
pub async fn wait_ready(server: &Server, ready: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(server, "/readyz").await;
        assert_eq!(status == 200, body["status"] == "ready", "{body}");
        if (status == 200) == ready {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never became {}: {body}",
            if ready { "ready" } else { "not ready" }
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
