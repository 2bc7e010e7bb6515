//! Checkpoints and exact recovery, with real processes.
//!
//! A standalone `flowboard broker` outlives the servers; a Kafka producer in the test writes a
//! known, deterministic stream ([`stream`]); servers are killed with SIGKILL at random points
//! (half of them while a checkpoint file is being written), stopped with SIGTERM, restarted
//! with other worker counts or on a damaged checkpoint directory ([`checkpoints`]). Afterwards
//! every widget (snapshot endpoint and WebSocket snapshot) is compared with the ground truth
//! computed from every event the broker acknowledged: counts, minima and maxima exactly, sums
//! and averages within 1e-9 relative. [`outage`] takes the broker down under HTTP ingest.
//!
//! Random kill points come from a seeded RNG; the seed is printed, and `FLOWBOARD_TEST_SEED=N`
//! replays it.

#[path = "../common/mod.rs"]
mod common;

mod checkpoints;
mod outage;
mod stream;

use std::time::Duration;

use checkpoints::*;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stream::*;

/// How long values may take to settle after a restart (replay, first ticks) on a loaded machine.
pub const SETTLE: Duration = Duration::from_secs(60);

/// Kill -9 at random points while a producer writes continuously; restart on the same data dir
/// each time. Every restart restores a checkpoint (not the whole topic), and at the end every
/// widget equals the truth over every acknowledged event: nothing lost, nothing counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_values_are_exact() {
    let mut rng = StdRng::seed_from_u64(seed());
    let broker = Broker::start();
    let mut server = Server::start_with_brokers(
        temp_data_dir("rec-crash"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let started = now_ms();
    let producer = ContinuousProducer::start(&broker, 0);
    wait_checkpoint_after(&server.checkpoint_dir(), started, SETTLE).await;

    let mut restored = Vec::new();
    let mut torn_writes = 0;
    for round in 0..6 {
        // Every other kill lands while a checkpoint file is being written (a few ms after a
        // boundary closed); the others at a random time.
        let (data_dir, torn) = if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
            kill_during_checkpoint_write(server, Duration::from_secs(3)).await
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..2500))).await;
            (server.kill9(), false)
        };
        torn_writes += usize::from(torn);
        server = Server::start_with_brokers(data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
        restored.push(restored_boundary(&server));
        eprintln!(
            "kill {round}: mid-write {torn}, restored boundary {}",
            restored[round]
        );
    }
    assert!(
        torn_writes > 0,
        "no kill interrupted a checkpoint write (none seen in progress)"
    );
    // Let the last life write a checkpoint of its own, then end the stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked = producer.finish().await;
    assert!(acked.len() > 1000, "only {} events produced", acked.len());

    board.wait_exact(&server, &acked, SETTLE).await;
    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);

    // Restores came from checkpoints that held data, never went backwards, and moved on.
    assert!(
        restored[0] > started,
        "restored {restored:?}, started at {started}"
    );
    assert!(
        restored.windows(2).all(|w| w[0] <= w[1]),
        "restored boundaries went backwards: {restored:?}"
    );
    assert!(
        restored[5] > restored[0],
        "no checkpoint written after a restart: {restored:?}"
    );
    let manifests = checkpoint_files(&server.checkpoint_dir(), "manifest-");
    assert!((1..=3).contains(&manifests.len()), "{manifests:?}");
}

/// Stop with 2 workers, restart with 1, then kill -9 and restart with 3: the state restored
/// from a checkpoint written by another worker count gives the same values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_with_other_worker_counts_keeps_values() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let server = Server::start_with_brokers(
        temp_data_dir("rec-workers"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 600).await;
    board.wait_exact(&server, &acked, SETTLE).await;

    let stopped = server.terminate();
    let last = final_boundary(&stopped);
    let server = Server::start_with_brokers(stopped.data_dir, &broker, 1, &CHECKPOINT_EVERY_SECOND);
    assert_eq!(restored_boundary(&server), last);
    board.wait_exact(&server, &acked, SETTLE).await;

    acked.extend(produce_range(&producer, 600, 1200).await);
    board.wait_exact(&server, &acked, SETTLE).await;
    let written = wait_checkpoint_after(&server.checkpoint_dir(), last, SETTLE).await;
    // Some events only Kafka has when the server dies: restored plus replayed at 3 workers.
    acked.extend(produce_range(&producer, 1200, 1300).await);
    let data_dir = server.kill9();
    let server = Server::start_with_brokers(data_dir, &broker, 3, &CHECKPOINT_EVERY_SECOND);
    assert!(restored_boundary(&server) >= written);
    board.wait_exact(&server, &acked, SETTLE).await;
    acked.extend(produce_range(&producer, 1300, 1500).await);
    board.wait_exact(&server, &acked, SETTLE).await;
}

/// Damage the newest checkpoint: first its manifest (bytes flipped), then, in a second round,
/// its newest segment (truncated). Each time the server says the checkpoint is unusable,
/// restores the previous one, replays Kafka from there and shows exact values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let data_dir = temp_data_dir("rec-corrupt");
    let checkpoints = data_dir.join("checkpoints");
    let server = Server::start_with_brokers(data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 400).await;
    board.wait_exact(&server, &acked, SETTLE).await;
    wait_checkpoint_after(&checkpoints, now_ms(), SETTLE).await;
    acked.extend(produce_range(&producer, 400, 800).await);
    board.wait_exact(&server, &acked, SETTLE).await;

    // Round 1: flip bytes in the middle of the newest manifest (the final one).
    let stopped = server.terminate();
    let manifests = checkpoint_files(&checkpoints, "manifest-");
    let newest = manifests.last().expect("a manifest").clone();
    assert_eq!(manifest_boundary(&newest), final_boundary(&stopped));
    let previous = manifest_boundary(&manifests[manifests.len() - 2]);
    let mut bytes = std::fs::read(&newest).expect("read manifest");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4] {
        *byte ^= 0x5a;
    }
    std::fs::write(&newest, &bytes).expect("write manifest");

    let server = Server::start_with_brokers(stopped.data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    assert_unusable_reported(&server, manifest_boundary(&newest));
    assert_eq!(restored_boundary(&server), previous);
    board.wait_exact(&server, &acked, SETTLE).await;

    // Round 2: events keep coming through the shutdown, so the final checkpoint has a segment
    // of its own; truncate that segment.
    let continuous = ContinuousProducer::start(&broker, 800);
    wait_checkpoint_after(&checkpoints, manifest_boundary(&newest), SETTLE).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    acked.extend(continuous.finish().await);
    let newest_boundary = final_boundary(&stopped);
    let segment = checkpoint_files(&checkpoints, "segment-")
        .last()
        .expect("a segment")
        .clone();
    let expected = newest_manifest_without(&checkpoints, &segment);
    assert!(
        expected < newest_boundary,
        "the newest checkpoint does not use the newest segment"
    );
    let length = std::fs::metadata(&segment).expect("segment").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open segment");
    file.set_len(length / 2).expect("truncate segment");

    let server = Server::start_with_brokers(stopped.data_dir, &broker, 2, &CHECKPOINT_EVERY_SECOND);
    assert_unusable_reported(&server, newest_boundary);
    assert_eq!(restored_boundary(&server), expected);
    board.wait_exact(&server, &acked, SETTLE).await;
}

/// SIGTERM: WebSocket clients get a 1001 close frame, the log reports a final checkpoint, and
/// the restarted server restores exactly that boundary: a client reconnecting to the same
/// address gets the exact values in its very first message, before any new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_final_checkpoint_then_reconnecting_clients_get_exact_snapshot() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    // No regular checkpoint falls inside the test: what is restored is the final one.
    let slow = ["--checkpoint-interval", "3600s"];
    let server = Server::start_with_brokers(temp_data_dir("rec-sigterm"), &broker, 2, &slow);
    let board = Board::create(&server).await;
    let acked = produce_range(&producer, 0, 500).await;
    board.wait_exact(&server, &acked, SETTLE).await;

    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
    let closing = tokio::spawn(async move { stream.close_code(Duration::from_secs(30)).await });
    let address = server.address().to_string();
    let url = server.ws_url(&format!("/stream/{}", board.id));
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("terminate");
    assert_eq!(
        closing.await.expect("close task"),
        Some(1001),
        "close code on shutdown"
    );
    let last = final_boundary(&stopped);

    let server = Server::start_with_brokers_at(stopped.data_dir, &broker, 2, &address, &slow);
    assert_eq!(restored_boundary(&server), last);
    let mut stream = Stream::connect_retrying(&url, Duration::from_secs(10)).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
    board.wait_exact(&server, &acked, Duration::ZERO).await;
}

/// Kill -9 under a connected client, right after events the last checkpoint does not hold;
/// the client reconnects to the restarted server on the same address and its first message is
/// a snapshot of the current values: the restored checkpoint plus the replayed events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_after_sigkill_gets_restored_snapshot() {
    let broker = Broker::start();
    let producer = kafka_producer(&broker);
    let server = Server::start_with_brokers(
        temp_data_dir("rec-reconnect"),
        &broker,
        2,
        &CHECKPOINT_EVERY_SECOND,
    );
    let board = Board::create(&server).await;
    let mut acked = produce_range(&producer, 0, 500).await;
    board.wait_exact(&server, &acked, SETTLE).await;
    wait_checkpoint_after(&server.checkpoint_dir(), now_ms(), SETTLE).await;
    let mut stream = Stream::connect(&server, &board.id).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);

    let address = server.address().to_string();
    let url = server.ws_url(&format!("/stream/{}", board.id));
    acked.extend(produce_range(&producer, 500, 700).await);
    let data_dir = server.kill9();
    assert_eq!(
        stream.next(Duration::from_secs(10)).await,
        None,
        "stream ends with the server"
    );
    let server =
        Server::start_with_brokers_at(data_dir, &broker, 2, &address, &CHECKPOINT_EVERY_SECOND);
    restored_boundary(&server);
    let mut stream = Stream::connect_retrying(&url, Duration::from_secs(10)).await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("snapshot");
    board.assert_ws_snapshot(&first, &acked);
    board.wait_exact(&server, &acked, Duration::ZERO).await;
}
