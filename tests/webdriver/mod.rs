//! Headless Chromium for black-box tests of the web dashboard: starts `chromedriver` on a free
//! port, opens a session with Debian's `chromium`, and offers the few page operations the
//! tests use (wait for a condition, click, type, screenshot).
//!
//! Chromium and chromedriver must be installed (`scripts/test` installs Debian's `chromium`
//! and `chromium-driver` when they are missing); without them the test fails with a message
//! saying so rather than skipping. `FLOWBOARD_CHROMIUM` and `FLOWBOARD_CHROMEDRIVER` override
//! the binaries' paths.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a wait for the page lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

/// A Chromium session driven over WebDriver.
pub struct Browser {
    client: Client,
    driver: Child,
    /// Where screenshots go.
    pub artifacts: PathBuf,
    _profile: tempfile::TempDir,
}

/// Where the browser tests write their screenshots: `target/test-artifacts/browser/` in the
/// repository (or `$FLOWBOARD_TEST_ARTIFACTS`).
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("FLOWBOARD_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/browser")
        })
}

fn binary(env: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} not found: the browser test needs Debian's `{package}` package \
         (scripts/test installs it: apt-get install chromium chromium-driver), or set {env}",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width` × `height` window.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = binary("FLOWBOARD_CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = binary(
            "FLOWBOARD_CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "chromium-driver",
        );
        let artifacts = artifacts_dir();
        std::fs::create_dir_all(&artifacts).expect("create the artifacts dir");
        let port = free_port();
        let log = std::fs::File::create(artifacts.join("chromedriver.log")).expect("driver log");
        // In a process group of its own, so that killing the group also ends the Chromium it
        // started, should a test fail before closing the session.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--log-level=WARNING")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(port);

        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Chromium did not start through chromedriver ({e}); see {}",
                    artifacts.join("chromedriver.log").display()
                )
            });
        let browser = Browser {
            client,
            driver,
            artifacts,
            _profile: profile,
        };
        browser.resize(width, height).await;
        browser
    }

    /// Ends the session (closing Chromium) and stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop stops chromedriver.
    }

    /// Loads `url` and waits for the page's scripts to have drawn something.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.wait(
            "the page to start",
            "return !document.querySelector('main .loading')",
        )
        .await;
    }

    /// Sets the size of the page's viewport (the window is sized so its inner part matches).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        let inner = self
            .eval("return [window.innerWidth, window.innerHeight]")
            .await;
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (iw, ih) != (width, height) && iw > 0 && ih > 0 {
            self.client
                .set_window_size(
                    width + (width - iw.min(width)),
                    height + (height - ih.min(height)),
                )
                .await
                .expect("resize");
        }
    }

    /// Runs `script` (a function body: `return ...`) in the page; answers what it returns.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns something truthy; answers it. Fails after [`PAGE_WAIT`]
    /// with `what` and the page's last answer.
    pub async fn wait(&self, what: &str, script: &str) -> Value {
        self.wait_for(what, script, PAGE_WAIT).await
    }

    /// [`Browser::wait`] with its own timeout.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(script).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let errors = self.eval("return window.flowboardErrors || []").await;
                let _ = self.screenshot("failure").await;
                panic!(
                    "timed out waiting for {what} (last answer {value}); page errors: {errors}; \
                     see failure.png"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element matching `css`, once there is one.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no element {css}: {e}"),
            }
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces the text of the input matching `css` with `text`, typing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Chooses the option with `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// The text of the element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const el = document.querySelector({}); return el ? el.textContent : ''",
            json!(css)
        );
        self.eval(&script).await.as_str().unwrap_or("").to_string()
    }

    /// Saves a screenshot of the viewport as `{name}.png` in the artifacts dir; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// A screenshot of the whole page at `width`: the viewport is made as tall as the page.
    pub async fn full_page_screenshot(&self, name: &str, width: u32) -> PathBuf {
        let height = self
            .eval("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(900) as u32;
        self.resize(width, height.clamp(400, 4000)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.screenshot(name).await
    }

    /// Script errors the page recorded (see `web/boot.js`).
    pub async fn page_errors(&self) -> Vec<String> {
        let errors = self.eval("return window.flowboardErrors || []").await;
        errors
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver's process group: chromedriver, and the Chromium it started if a test
        // failed before closing the session.
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Waits until chromedriver accepts connections on `port`.
fn wait_for_driver(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
