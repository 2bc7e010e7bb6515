//! Wires the server together: state shared by the HTTP handlers, the routes, and startup.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dataflow::pipeline::{ClusterSpec, Pipeline, PipelineConfig, WidgetControl};
use dataflow::stats::PipelineStats;
use dataflow::time::{now_ms, pane_end};
use tokio::net::TcpListener;
use warp::Filter;

use crate::auth::Auth;
use crate::broker::EmbeddedBroker;
use crate::config::{BrokerArgs, Config};
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::values_topic;

/// `flowboard serve`: runs until Ctrl-C / SIGTERM.
///
/// One process runs everything: HTTP, ingest, WebSockets and the dataflow, whose values reach
/// the hub directly. A member of a timely cluster (`--processes` > 1) runs its share of the
/// dataflow, publishes its workers' values to the values topic and reads everyone's back
/// from it. A frontend (`--frontend`) runs no dataflow and reads the values topic.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let started_at = now_ms();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flowboard-io")
        .build()?;

    // Kafka: the configured cluster, or an embedded one that lives as long as this process.
    let embedded = match &config.kafka_brokers {
        Some(_) => None,
        None => Some(EmbeddedBroker::start(&config.topic, config.partitions)?),
    };
    let brokers = match (&config.kafka_brokers, &embedded) {
        (Some(brokers), _) => brokers.clone(),
        (None, Some(broker)) => broker.bootstrap_servers(),
        (None, None) => {
            unreachable!("an embedded broker is started when no brokers are configured")
        }
    };
    if embedded.is_some() {
        tracing::warn!(
            topic = %config.topic,
            partitions = config.partitions,
            "using the embedded in-memory Kafka broker: for trying things out, not durable (pass --kafka-brokers for a real cluster)"
        );
    }
    tracing::info!("kafka bootstrap servers: {brokers}");

    // Dashboards, and the widgets the dataflow starts with.
    let store = runtime.block_on(crate::store::open_configured(
        config.database_url.as_ref(),
        &config.data_dir,
    ))?;
    let dashboards = runtime.block_on(store.list_dashboards())?;
    let processes = config.cluster.as_ref().map_or(1, |c| c.addresses.len());
    let all_workers = config.workers * processes;
    let hub = Hub::new(all_workers);
    for dashboard in &dashboards {
        hub.set_dashboard(dashboard);
    }

    // The Kafka source decodes with the process's tag limits, as HTTP ingest does.
    if let Err(installed) = config.limits.tags.install() {
        anyhow::bail!("tag limits already installed as {installed:?}");
    }
    // Where values come from: this process's own dataflow, or the values topic.
    let from_topic = config.frontend || config.cluster.is_some();
    if from_topic || config.publish_values {
        runtime.block_on(values_topic::ensure_topic(
            &brokers,
            &config.values_topic,
            all_workers as i32,
        ))?;
    }
    let (pipeline, stats, widgets) = if config.frontend {
        tracing::info!(values_topic = %config.values_topic, "frontend: serving values read from the values topic");
        // Widget changes reach the dataflow through the shared store.
        (
            None,
            Arc::new(PipelineStats::default()),
            WidgetControl::channel().0,
        )
    } else {
        let queries = dashboards
            .iter()
            .flat_map(|d| d.widgets.iter().map(|w| w.query()))
            .collect();
        let (sink, batches) = crate::bridge::channel();
        let pipeline = Pipeline::start(
            PipelineConfig {
                brokers: brokers.clone(),
                topic: config.topic.clone(),
                workers: config.workers,
                retention_ms: config.retention.as_millis() as u64,
                grace_ms: config.watermark_delay.as_millis() as u64,
                max_future_ms: config.max_clock_skew.as_millis() as u64,
                checkpoint_dir: Some(config.data_dir.join("checkpoints")),
                checkpoint_interval_ms: config.checkpoint_interval.as_millis() as u64,
                cluster: config.cluster.as_ref().map(|c| ClusterSpec {
                    process: c.process,
                    addresses: c.addresses.clone(),
                }),
            },
            queries,
            sink,
        )?;
        let publisher = if config.publish_values {
            Some(values_topic::Publisher::new(
                &brokers,
                &config.values_topic,
                all_workers,
            )?)
        } else {
            None
        };
        let local_hub = (!from_topic).then(|| hub.clone());
        let stats = pipeline.stats();
        // Only process 0 of a cluster holds the widget input; elsewhere widget changes reach it
        // through the shared store (a control nobody reads would only pile commands up).
        let control = match &config.cluster {
            Some(cluster) if cluster.process != 0 => WidgetControl::channel().0,
            _ => pipeline.control(),
        };
        runtime.spawn(crate::bridge::forward(
            batches,
            local_hub,
            publisher,
            stats.clone(),
            all_workers,
        ));
        (Some(pipeline), stats, control)
    };
    if from_topic {
        values_topic::spawn_reader(&brokers, &config.values_topic, hub.clone(), stats.clone())?;
    }

    let ingest = Ingest::new(
        &brokers,
        &config.topic,
        config.ingest_timeout,
        config.max_clock_skew,
    )?
    .with_limits(&config.limits);
    // Observability: /metrics reads the dataflow's counters and the hub at scrape time.
    let metrics = crate::metrics::Metrics::new(crate::metrics::MetricSources {
        stats: stats.clone(),
        hub: hub.clone(),
        ingest: ingest.metrics(),
        workers: all_workers,
        checkpoint_interval: config.checkpoint_interval,
        retention: config.retention,
    });
    let health = crate::health::Health::new(
        store.clone(),
        stats.clone(),
        crate::health::ReadyLimits::new(config.ready_max_lag, config.watermark_delay),
    );

    runtime.block_on(async {
        let ticker = hub.spawn_ticker();
        // A store other processes write to: their dashboard and widget changes reach our hub
        // and, where worker 0 (which owns the widget input) runs, the dataflow; our own API's
        // are told once. Stops on `hub.shutdown()`.
        if config.database_url.is_some() {
            let feeds_dataflow =
                pipeline.is_some() && config.cluster.as_ref().is_none_or(|c| c.process == 0);
            crate::store::watch::spawn(
                store.clone(),
                hub.clone(),
                feeds_dataflow.then(|| widgets.clone()),
                crate::store::watch::DEFAULT_INTERVAL,
                &dashboards,
            );
        }
        // A dataflow that died serves nothing but stale values: stop, so a supervisor restarts
        // us from the last checkpoint.
        let watched = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if watched.failed.load(std::sync::atomic::Ordering::SeqCst) {
                    tracing::error!("a dataflow worker failed; exiting");
                    std::process::exit(70);
                }
            }
        });
        // Serve once the dataflow closed the pane holding our start time: by then it has the
        // restored checkpoint and every event stamped before we started (replayed from Kafka,
        // even late ones, which enter right after the checkpoint's boundary), so a client's first
        // snapshot shows current values, not blanks or a half-replayed state. A shutdown
        // request meanwhile still gets its final checkpoint.
        let mut shutdown = Box::pin(shutdown_signal());
        // A frontend does not wait long: the other frontends' clients may be reconnecting to it.
        let catch_up = if config.frontend {
            FRONTEND_CATCH_UP
        } else {
            STARTUP_CATCH_UP
        };
        tokio::select! {
            () = wait_for_closed_time(&hub, pane_end(started_at), catch_up) => {}
            () = &mut shutdown => {
                tracing::info!("shutdown requested before serving");
                hub.shutdown();
                let _ = ticker.await;
                return anyhow::Ok(());
            }
        }
        let observability = crate::metrics::routes(metrics)
            .or(crate::health::routes(health))
            .unify();
        let auth = Auth::new(config.tokens.clone());
        let routes = crate::api::Api::new(store, hub.clone(), widgets, config.retention.as_secs())
            .with_auth(auth.clone())
            .with_limits(&config.limits)
            .routes()
            .or(crate::ingest::routes(
                ingest,
                config.limits.body_bytes,
                auth.clone(),
                config.tokens.ingest.is_none(),
            ))
            .unify()
            .or(crate::ws::routes(hub.clone(), auth, config.limits.ws))
            .or(observability)
            .or(crate::ui::routes())
            .recover(crate::error::recover);
        let listener = bind(config.http).with_context(|| format!("binding {}", config.http))?;
        let address = listener.local_addr()?;
        tracing::info!("listening on http://{address}");
        let stopping = hub.clone();
        warp::serve(routes)
            .incoming(listener)
            .graceful(async move {
                shutdown.await;
                tracing::info!("shutdown requested: closing WebSocket streams");
                // Stops the ticker; every stream sends its close frame.
                stopping.shutdown();
            })
            .run()
            .await;
        // warp's graceful shutdown does not wait for upgraded connections.
        let _ = tokio::time::timeout(Duration::from_secs(5), hub.wait_streams_closed()).await;
        let _ = ticker.await;
        anyhow::Ok(())
    })?;
    tracing::info!("shutting down");
    if let Some(pipeline) = pipeline {
        pipeline.shutdown(Duration::from_secs(10));
    }
    drop(embedded);
    Ok(())
}

/// Longest wait at startup for the dataflow to catch up before serving anyway.
const STARTUP_CATCH_UP: Duration = Duration::from_secs(30);

/// The same for a frontend, which only has to read the values topic.
const FRONTEND_CATCH_UP: Duration = Duration::from_secs(5);

/// Waits until the hub's closed time reaches `time`, at most `timeout`.
async fn wait_for_closed_time(hub: &Hub, time: u64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while hub.closed_time().is_none_or(|closed| closed < time) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                closed_time = hub.closed_time(),
                "the dataflow has not caught up within {timeout:?}; serving values that lag behind"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(closed_time = time, "dataflow caught up");
}

/// `flowboard broker`: runs the embedded broker until Ctrl-C / SIGTERM.
///
/// Lines on standard input control it, to rehearse failures: `down` makes the broker
/// unreachable, `up` brings it back.
pub fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(&args.topic, args.partitions)?;
    tracing::warn!("embedded in-memory Kafka broker: for trying things out, not durable");
    tracing::info!(topic = %args.topic, partitions = args.partitions, "kafka bootstrap servers: {}", broker.bootstrap_servers());
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(shutdown_signal());
        }
        std::process::exit(0);
    });
    // The mock cluster is not Send: it stays on this thread, which takes the commands.
    for line in std::io::stdin().lines() {
        let result = match line?.trim() {
            "down" => broker.broker_down().map(|()| "broker down"),
            "up" => broker.broker_up().map(|()| "broker up"),
            "" => continue,
            other => {
                tracing::warn!("unknown broker command {other:?}; use `down` or `up`");
                continue;
            }
        };
        match result {
            Ok(done) => tracing::info!("{done}"),
            Err(error) => tracing::error!(%error, "broker command failed"),
        }
    }
    loop {
        std::thread::park();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Binds the HTTP listener with `TCP_NODELAY`, which Linux passes on to every accepted
/// connection: a WebSocket update is one small write that must leave at once, not wait
/// behind Nagle's algorithm for the client's delayed acknowledgement of the previous one.
fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::bind;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() -> std::io::Result<()> {
        let listener = bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let _client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
        let (accepted, _) = listener.accept().await?;
        assert!(
            accepted.nodelay()?,
            "TCP_NODELAY not inherited from the listener"
        );
        Ok(())
    }
}
