//! Black-box test harness: starts the real `flowboard` binary on `127.0.0.1:0` with its
//! embedded broker, or against a standalone `flowboard broker` process that outlives it, kills
//! or stops it, and talks to it as clients do (HTTP, WebSocket, a Kafka producer).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A running server process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The Kafka bootstrap servers it printed.
    pub brokers: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Log lines after startup.
    pub log: mpsc::Receiver<String>,
    /// Log lines up to and including the `listening on` line.
    pub startup_log: Vec<String>,
}

/// A fresh, empty data directory under the target dir.
pub fn temp_data_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

impl Server {
    /// Starts `flowboard serve` with `extra` flags on a fresh data dir.
    pub fn start(name: &str, extra: &[&str]) -> Server {
        Server::start_in(temp_data_dir(name), extra)
    }

    /// Starts `flowboard serve` on `data_dir`.
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Server {
        Server::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// Starts `flowboard serve` with `extra` flags and environment variables `env`.
    pub fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch_with_env(
            temp_data_dir(name),
            &Server::defaults("127.0.0.1:0", extra),
            env,
        )
    }

    /// Starts `flowboard serve` on `data_dir`, listening on `http` (say, the address of a
    /// server that was stopped, so its clients can reconnect).
    pub fn start_on(data_dir: PathBuf, http: &str, extra: &[&str]) -> Server {
        Server::launch(data_dir, &Server::defaults(http, extra))
    }

    /// The flags tests use unless they say otherwise, then `extra`.
    fn defaults<'a>(http: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--http", http, "--workers", "2", "--partitions", "4"];
        args.extend_from_slice(extra);
        args
    }

    /// Starts `flowboard serve --data-dir data_dir` with exactly `args` (no defaults), and waits
    /// until it names its HTTP address and Kafka bootstrap servers.
    pub fn launch(data_dir: PathBuf, args: &[&str]) -> Server {
        Server::launch_with_env(data_dir, args, &[])
    }

    /// [`Server::launch`] with environment variables `env`.
    pub fn launch_with_env(data_dir: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flowboard"));
        command.envs(env.iter().copied());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("FLOWBOARD_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn flowboard");
        let log = forward_lines(child.stderr.take().expect("stderr"));
        let mut base = None;
        let mut brokers = None;
        let mut startup_log = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while base.is_none() || brokers.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = log.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "server did not start; base={base:?} brokers={brokers:?}; log:\n{}",
                    startup_log.join("\n")
                )
            });
            startup_log.push(line.clone());
            if let Some(at) = line.find("listening on http://") {
                base = Some(line[at + "listening on ".len()..].trim().to_string());
            }
            if let Some(at) = line.find("kafka bootstrap servers: ") {
                brokers = Some(
                    line[at + "kafka bootstrap servers: ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
        Server {
            child,
            base: base.unwrap_or_default(),
            brokers: brokers.unwrap_or_default(),
            data_dir,
            log,
            startup_log,
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `ws://127.0.0.1:PORT/path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{}", self.base.replacen("http://", "ws://", 1), path)
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(self) -> PathBuf {
        self.terminate().data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Show what the server said, to explain the failure.
            let lines: Vec<String> = self.log.try_iter().collect();
            let interesting: Vec<&String> = lines
                .iter()
                .filter(|l| !l.contains("PartitionEOF"))
                .collect();
            eprintln!("--- server log ({} lines, last 40) ---", interesting.len());
            for line in interesting.iter().rev().take(40).rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTTP client for the tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

/// `POST path` with a JSON body; returns status and parsed body (Null when empty).
pub async fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .post(server.url(path))
        .json(body)
        .send()
        .await
        .expect("request");
    read(response).await
}

/// `GET path`.
pub async fn get(server: &Server, path: &str) -> (u16, Value) {
    let response = http().get(server.url(path)).send().await.expect("request");
    read(response).await
}

/// `PATCH path` with a JSON body.
pub async fn patch(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .patch(server.url(path))
        .json(body)
        .send()
        .await
        .expect("request");
    read(response).await
}

/// `DELETE path`.
pub async fn delete(server: &Server, path: &str) -> (u16, Value) {
    let response = http()
        .delete(server.url(path))
        .send()
        .await
        .expect("request");
    read(response).await
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Current epoch milliseconds.
pub fn now_ms() -> u64 {
    dataflow::time::now_ms()
}

/// An event object.
pub fn event(metric: &str, value: f64, tags: &[(&str, &str)]) -> Value {
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"metric_name": metric, "value": value, "tags": tags, "event_time": now_ms()})
}

/// Ingests events over HTTP and asserts they were accepted.
pub async fn ingest(server: &Server, events: Vec<Value>) {
    let n = events.len();
    let (status, body) = post(server, "/ingest", &Value::Array(events)).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (202, Some(n as u64)),
        "ingest failed: {body}"
    );
}

/// Produces one record to the server's Kafka topic with a real Kafka client.
pub fn produce(server: &Server, key: &str, payload: &str) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.brokers)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to("metrics").key(key).payload(payload))
        .expect("queued");
    producer
        .flush(Duration::from_secs(10))
        .expect("acknowledged");
}

/// Creates a dashboard; returns its JSON.
pub async fn create_dashboard(server: &Server, name: &str, widgets: Value) -> Value {
    let (status, body) = post(
        server,
        "/dashboards",
        &json!({"name": name, "widgets": widgets}),
    )
    .await;
    assert_eq!(status, 201, "create dashboard: {body}");
    body
}

/// A WebSocket client on `/stream/{dashboard}`.
pub struct Stream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Stream {
    /// Connects to a full `ws://` URL.
    pub async fn connect_url(url: &str) -> Stream {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Stream { socket }
    }

    /// Connects.
    pub async fn connect(server: &Server, dashboard_id: &str) -> Stream {
        let (socket, _) =
            tokio_tungstenite::connect_async(server.ws_url(&format!("/stream/{dashboard_id}")))
                .await
                .expect("websocket connects");
        Stream { socket }
    }

    /// The next JSON text message, or None after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Ping(data) => {
                    let _ = self.socket.send(Message::Pong(data)).await;
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Waits for a message satisfying `check`; panics after `timeout`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(message) if check(&message) => return message,
                Some(message) => seen.push(message),
                None if Instant::now() < deadline => {
                    panic!("stream closed while waiting for {what}; saw {seen:#?}")
                }
                None => panic!("timed out waiting for {what}; saw {seen:#?}"),
            }
        }
    }
}

/// The value reported for `widget_id` in an update or snapshot message, if it has one.
pub fn value_in(message: &Value, widget_id: &str) -> Option<Value> {
    match message["type"].as_str() {
        Some("update") if message["widget_id"] == widget_id => Some(message["value"].clone()),
        Some("snapshot") => message["widgets"]
            .as_array()?
            .iter()
            .find(|w| w["widget_id"] == widget_id)
            .map(|w| w["value"].clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Processes that outlive each other: a standalone broker, servers killed and restarted on it.
// ---------------------------------------------------------------------------------------------

/// A `flowboard broker` process: the embedded broker on its own, so servers can be killed and
/// restarted against data that outlives them. `down` / `up` make it unreachable / reachable.
pub struct Broker {
    child: Child,
    stdin: std::process::ChildStdin,
    /// `HOST:PORT` it printed.
    pub bootstrap: String,
    log: mpsc::Receiver<String>,
}

/// Spawns a reader thread that forwards `stderr`'s lines, ANSI-stripped.
fn forward_lines(stderr: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    log
}

/// Waits for a line containing `needle`; returns it, or every line seen on timeout.
fn wait_line(
    log: &mpsc::Receiver<String>,
    needle: &str,
    timeout: Duration,
) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => return Err(seen),
        }
    }
}

impl Broker {
    /// Starts a broker whose `metrics` topic has 4 partitions.
    pub fn start() -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowboard"))
            .args(["broker", "--partitions", "4"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flowboard broker");
        let stdin = child.stdin.take().expect("stdin");
        let log = forward_lines(child.stderr.take().expect("stderr"));
        let marker = "kafka bootstrap servers: ";
        let line = wait_line(&log, marker, Duration::from_secs(30))
            .unwrap_or_else(|seen| panic!("broker did not start; log: {seen:#?}"));
        let bootstrap = line[line.find(marker).unwrap_or(0) + marker.len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        Broker {
            child,
            stdin,
            bootstrap,
            log,
        }
    }

    /// Sends a command (`down` or `up`) and waits until the broker confirmed it.
    pub fn command(&mut self, command: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("write to broker stdin");
        self.stdin.flush().expect("flush broker stdin");
        let done = format!("broker {command}");
        if let Err(seen) = wait_line(&self.log, &done, Duration::from_secs(10)) {
            panic!("broker did not confirm `{command}`; log: {seen:#?}");
        }
    }

    /// Makes the broker unreachable (returns once it confirmed).
    pub fn down(&mut self) {
        self.command("down");
    }

    /// Makes the broker reachable again.
    pub fn up(&mut self) {
        self.command("up");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a server said after it was asked to stop.
pub struct Stopped {
    /// Its data directory, for a restart.
    pub data_dir: PathBuf,
    /// Log lines after startup, up to its exit.
    pub log: Vec<String>,
    /// Whether it exited on its own (rather than being killed after the grace period).
    pub exited: bool,
}

impl Server {
    /// Starts `flowboard serve` on `data_dir` against `broker`, with `workers` workers and
    /// `extra` flags, on any free port.
    pub fn start_with_brokers(
        data_dir: PathBuf,
        broker: &Broker,
        workers: usize,
        extra: &[&str],
    ) -> Server {
        Server::start_with_brokers_at(data_dir, broker, workers, "127.0.0.1:0", extra)
    }

    /// Like [`Server::start_with_brokers`], on HTTP address `http` (to restart on the same port).
    pub fn start_with_brokers_at(
        data_dir: PathBuf,
        broker: &Broker,
        workers: usize,
        http: &str,
        extra: &[&str],
    ) -> Server {
        let workers = workers.to_string();
        let mut args = vec![
            "--http",
            http,
            "--workers",
            &workers,
            "--kafka-brokers",
            &broker.bootstrap,
        ];
        args.extend_from_slice(extra);
        Server::launch(data_dir, &args)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill9(mut self) -> PathBuf {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        self.data_dir.clone()
    }

    /// Stops the server with SIGTERM, waits for it to exit (at most 30 s, then SIGKILL), and
    /// returns what it logged meanwhile.
    pub fn terminate(mut self) -> Stopped {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader thread ends at EOF, once the process is gone.
        let log = self.log.iter().collect();
        Stopped {
            data_dir: self.data_dir.clone(),
            log,
            exited,
        }
    }

    /// `<data-dir>/checkpoints`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.data_dir.join("checkpoints")
    }
}

/// The value of `key=` in a structured log line (`boundary=1796000000000`).
pub fn log_field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Checkpoint files in `dir` whose name starts with `prefix` (`manifest-`, `segment-`), sorted
/// oldest (smallest number) first.
pub fn checkpoint_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".ckpt"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

impl Stream {
    /// Connects to `url` (`ws://…/stream/{id}`), retrying while the server is not up yet, for
    /// at most `timeout`.
    pub async fn connect_retrying(url: &str, timeout: Duration) -> Stream {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio_tungstenite::connect_async(url).await {
                Ok((socket, _)) => return Stream { socket },
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("websocket {url} did not connect within {timeout:?}: {error}"),
            }
        }
    }

    /// Reads until the server's close frame; returns its code (`None` if the connection ended
    /// without one, or nothing came within `timeout`).
    pub async fn close_code(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
    }
}

impl Server {
    /// Waits up to `timeout` for the server to exit on its own; its exit status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The log lines it printed since it started (drains them).
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().map(|line| strip_ansi(&line)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Raw requests, raw Kafka records, /metrics samples and the server's memory: for the limit and
// bad-input tests.
// ---------------------------------------------------------------------------------------------

/// An answer as the client saw it.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body parsed as JSON (a string when it is not JSON, `Null` when empty).
    pub body: Value,
}

/// `method path` with exactly `body` as its bytes, and `token` as a bearer token if given.
pub async fn send_raw(
    server: &Server,
    method: &str,
    path: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> Answer {
    if body.len() > 1024 * 1024 {
        return send_unread(server, method, path, body).await;
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = http().request(method, server.url(path));
    if !body.is_empty() {
        request = request.body(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    Answer {
        status,
        headers,
        body,
    }
}

/// Produces `records` (key, raw payload bytes) to the server's topic with one Kafka producer,
/// and waits until Kafka acknowledged them all.
pub fn produce_raw(server: &Server, records: &[(&str, Vec<u8>)]) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.brokers)
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer");
    for (key, payload) in records {
        producer
            .send(
                BaseRecord::to("metrics")
                    .key(*key)
                    .payload(payload.as_slice()),
            )
            .expect("queued");
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("acknowledged");
}

/// The value of the `/metrics` sample written exactly as `series` (name and labels in
/// exposition order), 0 when absent.
pub async fn metric(server: &Server, series: &str) -> f64 {
    let response = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    let text = response.text().await.expect("metrics text");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, bytes (Linux: `VmRSS` of `/proc/PID/status`).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|line| {
                let kb = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
                kb.trim().parse::<u64>().ok()
            })
            .expect("VmRSS")
            * 1024
    }
}

impl Stream {
    /// Sends `message` to the server.
    pub async fn send_message(&mut self, message: Message) {
        self.socket.send(message).await.expect("sent");
    }
}

/// `method path` with a large `body` over a plain TCP connection, reading the answer while the
/// body is written: a server that refuses a body by its `Content-Length` answers and closes
/// without reading it, and an HTTP client library then fails writing before it reads.
async fn send_unread(server: &Server, method: &str, path: &str, body: Vec<u8>) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(server.address())
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        server.address(),
        body.len()
    );
    let writing = tokio::spawn(async move {
        // Broken pipe once the server answered and closed: expected.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut answer)).await;
    writing.abort();
    let _ = read.expect("an answer in time");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.insert(name, value);
        }
    }
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    Answer {
        status,
        headers,
        body,
    }
}
