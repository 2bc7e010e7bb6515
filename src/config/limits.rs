//! Limits on what clients may ask of one server process: request sizes, event shapes, how
//! many dashboards and widgets exist, WebSocket connections, ingest rate, and the WebSocket
//! keepalive and timeouts.
//!
//! Every limit is a flag of `flowboard serve` with a default that suits one machine, and each
//! refusal has its own status and a JSON error (see `docs/limits.md`):
//!
//! | limit | flag | default | refused with |
//! |---|---|---|---|
//! | request body | `--max-body-size` | 10 MiB | `413` |
//! | events per `POST /ingest` | `--max-events-per-request` | 10,000 | `413` |
//! | tags per event | `--max-tags-per-event` | 32 | `400` `tags` (Kafka: `invalid_tags`) |
//! | tag key / value length | `--max-tag-key-length`, `--max-tag-value-length` | 128 / 256 characters | `400` `tags` (Kafka: `invalid_tags`) |
//! | widgets per dashboard | `--max-widgets-per-dashboard` | 100 | `409` `widgets` / `add` |
//! | dashboards | `--max-dashboards` | 1,000 | `409` |
//! | WebSocket connections | `--max-ws-connections` | 20,000 | `503` |
//! | WebSocket connections per client IP | `--max-ws-connections-per-ip` | 1,000 | `429` |
//! | ingest rate per token (per client IP when ingest is open) | `--ingest-rate`, `--ingest-burst` | unlimited | `429` + `Retry-After` |

use std::time::Duration;

use clap::Args;
use dataflow::event::TagLimits;

use super::ConfigError;

/// The limit flags of `flowboard serve` (flattened into [`super::ServeArgs`]).
#[derive(Clone, Debug, Args)]
pub struct LimitArgs {
    /// Largest request body (`POST /ingest`, dashboard writes): bytes, or with a unit such as
    /// `512KiB` or `10MiB`. Larger bodies get 413.
    #[arg(long, default_value = "10MiB", value_parser = parse_size)]
    pub max_body_size: u64,

    /// Most events one `POST /ingest` may carry (413 beyond).
    #[arg(long, default_value_t = 10_000)]
    pub max_events_per_request: usize,

    /// Most tags one event may carry, over HTTP and on the Kafka topic (and in a widget's
    /// filter).
    #[arg(long, default_value_t = 32)]
    pub max_tags_per_event: usize,

    /// Longest tag key, in characters.
    #[arg(long, default_value_t = 128)]
    pub max_tag_key_length: usize,

    /// Longest tag value, in characters.
    #[arg(long, default_value_t = 256)]
    pub max_tag_value_length: usize,

    /// Most widgets one dashboard may have (409 beyond).
    #[arg(long, default_value_t = 100)]
    pub max_widgets_per_dashboard: usize,

    /// Most dashboards the server keeps (409 beyond).
    #[arg(long, default_value_t = 1_000)]
    pub max_dashboards: usize,

    /// Most WebSocket streams open at once in this process (503 beyond).
    #[arg(long, default_value_t = 20_000)]
    pub max_ws_connections: usize,

    /// Most WebSocket streams open at once from one client IP address (429 beyond).
    #[arg(long, default_value_t = 1_000)]
    pub max_ws_connections_per_ip: usize,

    /// Events per second `POST /ingest` takes from each token (from each client IP when ingest
    /// is open); more get 429 with `Retry-After`. Unlimited when absent.
    #[arg(long, value_name = "EVENTS_PER_SECOND")]
    pub ingest_rate: Option<f64>,

    /// Events a token may send at once above `--ingest-rate` after a quiet period [default:
    /// one second's worth].
    #[arg(long, value_name = "EVENTS", requires = "ingest_rate")]
    pub ingest_burst: Option<f64>,

    /// A WebSocket client whose socket accepts nothing for this long is closed (code 1013).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_send_timeout: Duration,

    /// How often the server pings each WebSocket client.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub ws_ping_interval: Duration,

    /// A WebSocket client that sends nothing (not even a pong) for this long is closed
    /// (code 1008).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub ws_idle_timeout: Duration,
}

/// Validated limits; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body, bytes.
    pub body_bytes: u64,
    /// Most events per `POST /ingest`.
    pub events_per_request: usize,
    /// Tags per event and the length of their keys and values (also for widget filters).
    pub tags: TagLimits,
    /// Most widgets per dashboard.
    pub widgets_per_dashboard: usize,
    /// Most dashboards.
    pub dashboards: usize,
    /// WebSocket connections, limits and timeouts.
    pub ws: WsLimits,
    /// `POST /ingest` events per second per token or client IP; `None` is unlimited.
    pub ingest_rate: Option<Rate>,
}

/// WebSocket connection limits, keepalive and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsLimits {
    /// Most streams open at once in the process.
    pub connections: usize,
    /// Most streams open at once from one client IP address.
    pub connections_per_ip: usize,
    /// How long a client's socket may accept nothing before the client is closed.
    pub send_timeout: Duration,
    /// How often clients are pinged.
    pub ping_interval: Duration,
    /// How long a client may send nothing (not even a pong) before it is closed.
    pub idle_timeout: Duration,
}

/// A token bucket's settings: refilled at `per_second`, holding at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained events per second.
    pub per_second: f64,
    /// Events that may come at once after a quiet period.
    pub burst: f64,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            connections: 20_000,
            connections_per_ip: 1_000,
            send_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 10 * 1024 * 1024,
            events_per_request: 10_000,
            tags: TagLimits::DEFAULT,
            widgets_per_dashboard: 100,
            dashboards: 1_000,
            ws: WsLimits::default(),
            ingest_rate: None,
        }
    }
}

impl Limits {
    /// Checks the limit flags.
    pub fn from_args(args: LimitArgs) -> Result<Limits, ConfigError> {
        let fail = |flag, message: String| Err(ConfigError { flag, message });
        let positive = [
            ("max-events-per-request", args.max_events_per_request),
            ("max-tags-per-event", args.max_tags_per_event),
            ("max-tag-key-length", args.max_tag_key_length),
            ("max-tag-value-length", args.max_tag_value_length),
            ("max-widgets-per-dashboard", args.max_widgets_per_dashboard),
            ("max-dashboards", args.max_dashboards),
            ("max-ws-connections", args.max_ws_connections),
            ("max-ws-connections-per-ip", args.max_ws_connections_per_ip),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return fail(flag, "0 would refuse everything; use at least 1".into());
            }
        }
        if args.max_body_size < 1024 {
            return fail(
                "max-body-size",
                format!("{} bytes; use at least 1KiB", args.max_body_size),
            );
        }
        let ingest_rate = match args.ingest_rate {
            None => None,
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                return fail(
                    "ingest-rate",
                    format!(
                        "{rate}; use a positive number of events per second, or leave it out for no limit"
                    ),
                );
            }
            Some(rate) => {
                let burst = args.ingest_burst.unwrap_or(rate.max(1.0));
                if !(burst.is_finite() && burst >= 1.0) {
                    return fail("ingest-burst", format!("{burst}; use at least 1 event"));
                }
                Some(Rate {
                    per_second: rate,
                    burst,
                })
            }
        };
        let ws = WsLimits {
            connections: args.max_ws_connections,
            connections_per_ip: args.max_ws_connections_per_ip,
            send_timeout: args.ws_send_timeout,
            ping_interval: args.ws_ping_interval,
            idle_timeout: args.ws_idle_timeout,
        };
        if ws.send_timeout < Duration::from_millis(10) {
            return fail("ws-send-timeout", "use at least 10ms, such as 10s".into());
        }
        if ws.ping_interval < Duration::from_millis(10) {
            return fail("ws-ping-interval", "use at least 10ms, such as 20s".into());
        }
        if ws.idle_timeout <= ws.ping_interval {
            return fail(
                "ws-idle-timeout",
                format!(
                    "{:?} is not longer than --ws-ping-interval ({:?}): clients would be closed before they could answer a ping; use a few ping intervals",
                    ws.idle_timeout, ws.ping_interval
                ),
            );
        }
        Ok(Limits {
            body_bytes: args.max_body_size,
            events_per_request: args.max_events_per_request,
            tags: TagLimits {
                max_tags: args.max_tags_per_event,
                max_key_chars: args.max_tag_key_length,
                max_value_chars: args.max_tag_value_length,
            },
            widgets_per_dashboard: args.max_widgets_per_dashboard,
            dashboards: args.max_dashboards,
            ws,
            ingest_rate,
        })
    }
}

/// A size in bytes: a number, optionally followed by `B`, `KB`/`KiB`, `MB`/`MiB` or
/// `GB`/`GiB` (`k`, `M`, `G` alone are the binary units).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; use bytes or a unit such as 10MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }

    fn limits(args: &[&str]) -> Result<Limits, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("flowboard").chain(args.iter().copied()))
            .map_err(|e| ConfigError {
                flag: "parse",
                message: e.to_string(),
            })?;
        Limits::from_args(cli.limits)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        assert_eq!(limits(&[]).expect("valid"), Limits::default());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn invalid_settings_say_what_to_do() {
        for (args, flag) in [
            (&["--max-dashboards", "0"][..], "max-dashboards"),
            (&["--max-body-size", "10"], "max-body-size"),
            (&["--ingest-rate", "0"], "ingest-rate"),
            (&["--ingest-rate", "NaN"], "ingest-rate"),
            (
                &["--ingest-rate", "5", "--ingest-burst", "0.5"],
                "ingest-burst",
            ),
            (
                &["--ws-ping-interval", "30s", "--ws-idle-timeout", "30s"],
                "ws-idle-timeout",
            ),
        ] {
            let error = limits(args).expect_err("invalid");
            assert_eq!(error.flag, flag, "{args:?}: {error}");
        }
    }

    #[test]
    fn the_burst_defaults_to_one_second_of_the_rate() {
        let rate = limits(&["--ingest-rate", "250"])
            .expect("valid")
            .ingest_rate
            .expect("set");
        assert_eq!((rate.per_second, rate.burst), (250.0, 250.0));
        let slow = limits(&["--ingest-rate", "0.5"])
            .expect("valid")
            .ingest_rate
            .expect("set");
        assert_eq!(slow.burst, 1.0);
    }
}
