//! The web dashboard in headless Chromium, used as a person would: create a dashboard and its
//! widgets through the page, send events to `POST /ingest`, and watch the number, the chart,
//! the gauge and the table update; see a short window expire, the connection drop and come
//! back; rename and delete dashboards. Screenshots go to `target/test-artifacts/browser/`.

mod common;
#[allow(dead_code)] // only its Broker is used here
mod observe;
mod webdriver;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use webdriver::Browser;

/// One browser test at a time: two Chromiums and their servers on a 2-core machine would
/// make the timing of a 4 s window flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LAPTOP: (u32, u32) = (1440, 900);
const PHONE: (u32, u32) = (390, 844);

/// A widget as the test fills in the editor.
struct WidgetForm<'a> {
    kind: &'a str,
    title: &'a str,
    metric: &'a str,
    aggregation: &'a str,
    window_seconds: u64,
    unit: &'a str,
    thresholds: &'a [(f64, &'a str)],
    filter: &'a [(&'a str, &'a str)],
    scale: Option<(f64, f64)>,
    history_minutes: Option<u64>,
    table_rows: bool,
}

impl Default for WidgetForm<'_> {
    fn default() -> Self {
        WidgetForm {
            kind: "number",
            title: "",
            metric: "",
            aggregation: "avg",
            window_seconds: 60,
            unit: "",
            thresholds: &[],
            filter: &[],
            scale: None,
            history_minutes: None,
            table_rows: false,
        }
    }
}

/// Adds a widget through the editor; `screenshot` names a picture of the filled-in editor.
async fn add_widget(browser: &Browser, form: &WidgetForm<'_>, screenshot: Option<&str>) {
    let cards = count(browser, ".grid .card").await;
    browser
        .click(".board-actions [data-action=add-widget]")
        .await;
    browser
        .wait(
            "the editor",
            "return document.querySelector('dialog.dialog-editor[open]')",
        )
        .await;
    let dialog = "dialog.dialog-editor";
    browser
        .click(&format!("{dialog} .segment[data-kind={}]", form.kind))
        .await;
    browser
        .fill(&format!("{dialog} input[name=metric_name]"), form.metric)
        .await;
    browser
        .select(
            &format!("{dialog} select[name=aggregation]"),
            form.aggregation,
        )
        .await;
    browser
        .fill(
            &format!("{dialog} input[name=window_seconds]"),
            &form.window_seconds.to_string(),
        )
        .await;
    browser
        .select(&format!("{dialog} select[name=window_seconds_unit]"), "1")
        .await;
    browser
        .fill(&format!("{dialog} input[name=title]"), form.title)
        .await;
    browser
        .fill(&format!("{dialog} input[name=unit]"), form.unit)
        .await;
    for (i, (tag, value)) in form.filter.iter().enumerate() {
        browser.click(&format!("{dialog} [data-add=tags]")).await;
        let row = format!("{dialog} .tags .row-list-row:nth-child({})", i + 1);
        browser.fill(&format!("{row} .tag-key"), tag).await;
        browser.fill(&format!("{row} .tag-value"), value).await;
    }
    for (i, (value, color)) in form.thresholds.iter().enumerate() {
        browser
            .click(&format!("{dialog} [data-add=thresholds]"))
            .await;
        let row = format!("{dialog} .thresholds .row-list-row:nth-child({})", i + 1);
        browser
            .fill(&format!("{row} .threshold-value"), &value.to_string())
            .await;
        browser
            .select(&format!("{row} .threshold-color"), color)
            .await;
    }
    if let Some((min, max)) = form.scale {
        browser
            .fill(&format!("{dialog} input[name=min]"), &min.to_string())
            .await;
        browser
            .fill(&format!("{dialog} input[name=max]"), &max.to_string())
            .await;
    }
    if let Some(minutes) = form.history_minutes {
        browser
            .fill(
                &format!("{dialog} input[name=window_minutes]"),
                &minutes.to_string(),
            )
            .await;
    }
    if form.table_rows {
        browser
            .eval(
                "document.querySelectorAll('dialog.dialog-editor input[name=rows]')\
                 .forEach((box) => { if (!box.checked) box.click(); }); return true",
            )
            .await;
    }
    if let Some(name) = screenshot {
        browser.screenshot(name).await;
    }
    browser
        .click(&format!("{dialog} [data-action=save-widget]"))
        .await;
    let script = format!(
        "return !document.querySelector('dialog.dialog-editor') \
         && document.querySelectorAll('.grid .card').length === {}",
        cards + 1
    );
    browser
        .wait(&format!("the {} widget on the grid", form.kind), &script)
        .await;
}

async fn count(browser: &Browser, css: &str) -> u64 {
    let script = format!("return document.querySelectorAll({}).length", json!(css));
    browser.eval(&script).await.as_u64().unwrap_or(0)
}

/// The text shown by the first card of `kind` in the element matching `inner`.
async fn card_text(browser: &Browser, kind: &str, inner: &str) -> String {
    browser
        .text(&format!(".card[data-kind={kind}] {inner}"))
        .await
        .trim()
        .to_string()
}

/// Waits until the first card of `kind` shows `text` in `inner`.
async fn wait_card_text(browser: &Browser, kind: &str, inner: &str, text: &str) {
    let script = format!(
        "const el = document.querySelector('.card[data-kind={kind}] {inner}'); \
         return el && el.textContent.trim() === {}",
        json!(text)
    );
    browser
        .wait(&format!("the {kind} card to show {text:?}"), &script)
        .await;
}

fn latency(value: f64) -> Value {
    event("api.latency", value, &[("host", "web-1")])
}

/// Sends two latencies averaging 100 ms and waits for the number card to show them (its
/// window is 4 s, so screenshots that need it live call this first).
async fn latency_live(server: &Server, browser: &Browser) {
    let elsewhere = event("api.latency", 5000.0, &[("host", "web-2")]); // filtered out
    ingest(server, vec![latency(120.0), latency(80.0), elsewhere]).await;
    wait_card_text(browser, "number", ".number-value", "100").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_the_browser() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut server = Server::start("browser", &[]);
    let browser = Browser::start(LAPTOP.0, LAPTOP.1).await;
    for old in std::fs::read_dir(&browser.artifacts)
        .into_iter()
        .flatten()
        .flatten()
    {
        if old.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(old.path());
        }
    }

    // The empty list, then a new dashboard through the page.
    browser.open(&server.url("/")).await;
    browser
        .wait(
            "the empty state",
            "return document.querySelector('.dash-list .empty')",
        )
        .await;
    browser.screenshot("01-dashboards-empty").await;
    browser.click("[data-action=new-dashboard]").await;
    browser
        .fill("dialog[open] input[name=text]", "Checkout service")
        .await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the new dashboard, live",
            "return location.hash.startsWith('#/dashboards/') \
             && document.querySelector('.conn[data-state=live]')",
        )
        .await;
    let dashboard_id = browser
        .eval("return location.hash.split('/')[2]")
        .await
        .as_str()
        .expect("dashboard id in the URL")
        .to_string();

    // One widget of each kind, through the editor.
    add_widget(
        &browser,
        &WidgetForm {
            kind: "number",
            title: "Avg latency",
            metric: "api.latency",
            aggregation: "avg",
            window_seconds: 4,
            unit: "ms",
            thresholds: &[(0.0, "green"), (150.0, "amber"), (300.0, "red")],
            filter: &[("host", "web-1")],
            ..WidgetForm::default()
        },
        None,
    )
    .await;
    add_widget(
        &browser,
        &WidgetForm {
            kind: "line",
            title: "Orders in the last minute",
            metric: "checkout.orders",
            aggregation: "sum",
            window_seconds: 60,
            thresholds: &[(15.0, "red")],
            history_minutes: Some(2),
            ..WidgetForm::default()
        },
        None,
    )
    .await;
    add_widget(
        &browser,
        &WidgetForm {
            kind: "gauge",
            title: "Peak CPU",
            metric: "host.cpu",
            aggregation: "max",
            window_seconds: 30,
            unit: "%",
            thresholds: &[(70.0, "amber"), (90.0, "red")],
            scale: Some((0.0, 100.0)),
            ..WidgetForm::default()
        },
        Some("02-widget-editor"),
    )
    .await;
    add_widget(
        &browser,
        &WidgetForm {
            kind: "table",
            title: "Overview",
            metric: "api.latency",
            aggregation: "count",
            window_seconds: 60,
            table_rows: true,
            ..WidgetForm::default()
        },
        None,
    )
    .await;
    let (status, stored) = get(&server, &format!("/dashboards/{dashboard_id}")).await;
    assert_eq!(status, 200, "{stored}");
    let widgets = stored["widgets"].as_array().expect("widgets");
    let kinds: Vec<&str> = widgets
        .iter()
        .map(|w| w["display_config"]["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["number", "line", "gauge", "table"]);
    assert_eq!(widgets[0]["window_seconds"], 4);
    assert_eq!(widgets[0]["display_config"]["unit"], "ms");
    assert_eq!(widgets[0]["filter"], json!({"host": "web-1"}));
    assert_eq!(
        widgets[0]["display_config"]["thresholds"],
        json!([{"value": 0, "color": "green"}, {"value": 150, "color": "amber"},
               {"value": 300, "color": "red"}])
    );
    assert_eq!(widgets[2]["display_config"]["max"], 100);
    assert_eq!(
        widgets[3]["display_config"]["widgets"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "the table lists the other three widgets: {}",
        widgets[3]
    );
    for widget in widgets {
        let grid = &widget["display_config"]["grid"];
        assert!(grid["w"].as_u64().is_some(), "placed on the grid: {widget}");
    }

    // Events: the line steps up over several pushes, the gauge and the number follow.
    ingest(
        &server,
        vec![event("host.cpu", 42.0, &[]), event("host.cpu", 73.0, &[])],
    )
    .await;
    let mut shapes = Vec::new();
    for (orders, total) in [(3.0, "3"), (5.0, "8"), (2.0, "10"), (6.0, "16")] {
        ingest(&server, vec![event("checkout.orders", orders, &[])]).await;
        let script = format!(
            "const svg = document.querySelector('.card[data-kind=line] svg.chart'); \
             return svg && svg.dataset.last === {} && svg.querySelector('.chart-line').getAttribute('d')",
            json!(total)
        );
        let shape = browser
            .wait(&format!("the chart to reach {total}"), &script)
            .await;
        shapes.push(shape);
        wait_card_text(&browser, "line", ".line-current", total).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    shapes.dedup();
    assert_eq!(shapes.len(), 4, "the chart's line changes with each push");
    let points = browser
        .eval("return Number(document.querySelector('.card[data-kind=line] svg.chart').dataset.points)")
        .await;
    assert!(points.as_u64() >= Some(4), "points on the chart: {points}");
    let ticks = count(&browser, ".card[data-kind=line] .chart-label.x").await;
    assert!(ticks >= 2, "a time axis with ticks ({ticks})");
    wait_card_text(&browser, "gauge", ".gauge-number", "73").await;
    let gauge_color = browser
        .eval("return document.querySelector('.card[data-kind=gauge] .gauge-value').getAttribute('stroke')")
        .await;
    assert_eq!(
        gauge_color, "var(--c-amber)",
        "73 is past the amber threshold"
    );

    latency_live(&server, &browser).await;
    let color = browser
        .eval("return document.querySelector('.card[data-kind=number] .number-value').style.color")
        .await;
    assert_eq!(color, "var(--c-green)", "100 ms is in the green band");
    assert_eq!(card_text(&browser, "number", ".number-unit").await, "ms");
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('.card[data-kind=table] tbody tr')]\
             .map((tr) => [tr.querySelector('.row-title').textContent, tr.querySelector('.row-value').textContent])",
        )
        .await;
    let rows = rows.as_array().expect("table rows").clone();
    assert_eq!(rows.len(), 4, "own query + three rows: {rows:?}");
    assert_eq!(rows[1], json!(["Avg latency", "100"]));
    assert_eq!(rows[2], json!(["Orders in the last minute", "16"]));
    assert_eq!(rows[3], json!(["Peak CPU", "73"]));
    browser.screenshot("03-dashboard-live-light").await;

    // Dark mode (the theme switch goes auto → light → dark), then a phone-width screen.
    browser.click("#theme-toggle").await;
    browser.click("#theme-toggle").await;
    browser
        .wait(
            "dark mode",
            "return document.documentElement.dataset.theme === 'dark'",
        )
        .await;
    latency_live(&server, &browser).await;
    browser.screenshot("04-dashboard-live-dark").await;
    browser.click("#theme-toggle").await; // back to auto (light here)
    browser.resize(PHONE.0, PHONE.1).await;
    let columns = browser
        .eval("return getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length")
        .await;
    assert_eq!(columns, 1, "one column on a phone");
    latency_live(&server, &browser).await;
    browser
        .full_page_screenshot("05-dashboard-phone", PHONE.0)
        .await;
    browser.resize(LAPTOP.0, LAPTOP.1).await;

    // Arrange: in edit mode the arrow keys move a card, and the place is saved.
    browser.click("[data-action=edit-layout]").await;
    let table_id = widgets[3]["widget_id"]
        .as_str()
        .expect("table id")
        .to_string();
    let before = widgets[3]["display_config"]["grid"]["x"]
        .as_u64()
        .expect("x");
    browser
        .eval(&format!(
            "const card = document.querySelector('.card[data-widget-id=\"{table_id}\"]'); card.focus(); \
             card.dispatchEvent(new KeyboardEvent('keydown', {{key: 'ArrowRight', bubbles: true}})); return true"
        ))
        .await;
    let mut moved = None;
    for _ in 0..50 {
        let (_, now) = get(&server, &format!("/dashboards/{dashboard_id}")).await;
        let x = now["widgets"][3]["display_config"]["grid"]["x"].as_u64();
        if x == Some(before + 1) {
            moved = x;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(moved, Some(before + 1), "the table moved one column right");
    browser.screenshot("06-edit-layout").await;
    browser
        .eval(&format!(
            "document.querySelector('.card[data-widget-id=\"{table_id}\"]')\
             .dispatchEvent(new KeyboardEvent('keydown', {{key: 'ArrowLeft', bubbles: true}})); return true"
        ))
        .await;
    browser
        .wait(
            "the table back in the first column",
            &format!("return getComputedStyle(document.querySelector('.card[data-widget-id=\"{table_id}\"]')).getPropertyValue('--col').trim() === '{}'", before + 1),
        )
        .await;
    browser.click("[data-action=edit-layout]").await;

    // The number's 4 s window empties without new events, and the card says so.
    browser
        .wait_for(
            "the number's window to expire",
            "const card = document.querySelector('.card[data-kind=number]'); \
             return card.dataset.phase === 'empty' && card.querySelector('.value-note').textContent",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        card_text(&browser, "number", ".value-note").await,
        "No events in the last 4 s"
    );
    assert_eq!(
        card_text(&browser, "number", ".number-value").await,
        "No data"
    );
    browser.screenshot("07-window-expired").await;

    // The server goes away: the page says so and marks every value; it comes back on the
    // same address and the page takes the new snapshot and later updates.
    let address = server.base.trim_start_matches("http://").to_string();
    let data_dir = server.data_dir.clone();
    server.stop();
    browser
        .wait(
            "the page to notice the lost connection",
            "return document.querySelector('.conn[data-state=reconnecting]') \
             && [...document.querySelectorAll('.card')].every((c) => c.dataset.stale === 'true')",
        )
        .await;
    assert!(
        browser
            .text(".banner")
            .await
            .contains("Connection to the server lost"),
        "banner: {}",
        browser.text(".banner").await
    );
    browser.screenshot("08-reconnecting").await;
    server = Server::start_on(data_dir, &address, &[]);
    browser
        .wait_for(
            "the page to reconnect",
            "return document.querySelector('.conn[data-state=live]') \
             && [...document.querySelectorAll('.card')].every((c) => c.dataset.stale === 'false')",
            Duration::from_secs(40),
        )
        .await;
    ingest(&server, vec![event("host.cpu", 95.0, &[])]).await;
    wait_card_text(&browser, "gauge", ".gauge-number", "95").await;
    latency_live(&server, &browser).await;
    browser.screenshot("09-reconnected").await;

    // Rename this dashboard; create, rename and delete another from the list.
    browser.click("[data-action=rename]").await;
    browser
        .fill("dialog[open] input[name=text]", "Checkout")
        .await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the new name",
            "return document.querySelector('.board-name').textContent === 'Checkout'",
        )
        .await;
    browser.click(".crumbs a[href='#/']").await;
    browser
        .wait(
            "the list",
            "return document.querySelectorAll('.dash-row').length === 1",
        )
        .await;
    browser.click("[data-action=new-dashboard]").await;
    browser
        .fill("dialog[open] input[name=text]", "Scratch")
        .await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the scratch dashboard",
            "return document.querySelector('.board .empty:not([hidden])')",
        )
        .await;
    // A widget added and removed again through the editor.
    add_widget(
        &browser,
        &WidgetForm {
            metric: "tmp.metric",
            aggregation: "count",
            ..WidgetForm::default()
        },
        None,
    )
    .await;
    browser.click(".card [data-action=edit-widget]").await;
    browser
        .click("dialog[open] [data-action=remove-widget]")
        .await;
    browser
        .click("dialog[open] [data-action=remove-widget]")
        .await;
    browser
        .wait(
            "the widget removed",
            "return document.querySelectorAll('.grid .card').length === 0",
        )
        .await;
    browser.click(".crumbs a[href='#/']").await;
    browser
        .wait(
            "both dashboards",
            "return document.querySelectorAll('.dash-row').length === 2",
        )
        .await;
    browser
        .eval(
            "const row = [...document.querySelectorAll('.dash-row')]\
             .find((r) => r.querySelector('.dash-name').textContent === 'Scratch'); \
             row.querySelector('[data-action=rename]').click(); return true",
        )
        .await;
    browser
        .fill("dialog[open] input[name=text]", "Scratch (old)")
        .await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the renamed row",
            "return [...document.querySelectorAll('.dash-name')].some((n) => n.textContent === 'Scratch (old)')",
        )
        .await;
    browser.screenshot("10-dashboards-list").await;
    browser
        .eval(
            "const row = [...document.querySelectorAll('.dash-row')]\
             .find((r) => r.querySelector('.dash-name').textContent === 'Scratch (old)'); \
             row.querySelector('[data-action=delete]').click(); return true",
        )
        .await;
    browser.screenshot("11-delete-dashboard").await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the deleted row gone",
            "return document.querySelectorAll('.dash-row').length === 1",
        )
        .await;
    let (_, all) = get(&server, "/dashboards").await;
    let names: Vec<&str> = all
        .as_array()
        .expect("dashboards")
        .iter()
        .map(|d| d["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["Checkout"]);

    let errors = browser.page_errors().await;
    assert!(errors.is_empty(), "script errors on the page: {errors:?}");
    browser.close().await;
    server.stop();
}

/// While Kafka is unreachable the dataflow's time stands still; the server reports the values
/// as stale, and the page marks them (while its own connection stays live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_marked_stale_while_kafka_is_down() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut broker = Broker::start();
    let server = Server::start("browser-stale", &["--kafka-brokers", &broker.bootstrap]);
    let dashboard = create_dashboard(
        &server,
        "Payments",
        json!([
            {"metric_name": "pay.amount", "aggregation": "sum", "window_seconds": 300,
             "display_config": {"kind": "number", "title": "Paid (5 min)", "unit": "EUR"}},
            {"metric_name": "pay.amount", "aggregation": "count", "window_seconds": 300,
             "display_config": {"kind": "line", "title": "Payments", "window_minutes": 1}},
        ]),
    )
    .await;
    let id = dashboard["dashboard_id"].as_str().expect("id").to_string();
    let browser = Browser::start(1200, 560).await;
    browser
        .open(&server.url(&format!("/#/dashboards/{id}")))
        .await;
    ingest(
        &server,
        vec![
            event("pay.amount", 40.0, &[]),
            event("pay.amount", 2.5, &[]),
        ],
    )
    .await;
    wait_card_text(&browser, "number", ".number-value", "42.5").await;
    browser
        .wait(
            "fresh values",
            "return document.querySelector('.card[data-kind=number]').dataset.stale === 'false'",
        )
        .await;

    broker.command("down");
    browser
        .wait_for(
            "the values marked stale",
            "return document.querySelector('.conn[data-state=live]') \
             && [...document.querySelectorAll('.card')].every((c) => c.dataset.stale === 'true' \
                 && !c.querySelector('.badge-stale').hidden)",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(card_text(&browser, "number", ".badge-stale").await, "Stale");
    assert!(
        card_text(&browser, "number", ".card-asof")
            .await
            .starts_with("as of "),
        "the card says how old its value is"
    );
    browser.screenshot("12-stale-while-kafka-is-down").await;

    broker.command("up");
    browser
        .wait_for(
            "fresh values again",
            "return [...document.querySelectorAll('.card')].every((c) => c.dataset.stale === 'false')",
            Duration::from_secs(60),
        )
        .await;
    let errors = browser.page_errors().await;
    assert!(errors.is_empty(), "script errors on the page: {errors:?}");
    browser.close().await;
    server.stop();
}

/// With a read and an admin token the page asks for a token when the API answers 401 (and
/// again when a valid one is refused), keeps it, shows the live dashboard over a stream that
/// carries it, asks for a stronger token when a change is refused with 403, remembers it across
/// reloads, and forgets it on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_asks_for_a_token_and_shows_a_live_dashboard() {
    const READ: &str = "read-token-for-the-browser-0123";
    const ADMIN: &str = "admin-token-for-the-browser-0123";
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start(
        "browser-token",
        &["--read-token", READ, "--admin-token", ADMIN],
    );
    let created = send_raw(
        &server,
        "POST",
        "/dashboards",
        json!({"name": "Secured", "widgets": [
            {"metric_name": "secure.load", "aggregation": "sum", "window_seconds": 300,
             "display_config": {"kind": "number", "title": "Load (5 min)"}}]})
        .to_string()
        .into_bytes(),
        Some(ADMIN),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["dashboard_id"]
        .as_str()
        .expect("id")
        .to_string();
    let token_dialog = "dialog.dialog-token[open]";
    let asked = format!("return document.querySelector('{token_dialog}')");

    let browser = Browser::start(LAPTOP.0, LAPTOP.1).await;
    browser.open(&server.url("/")).await;
    browser.wait("the page to ask for a token", &asked).await;
    assert_eq!(
        browser
            .eval("return document.getElementById('token-button').hidden")
            .await,
        true
    );
    browser.screenshot("13-token-asked").await;

    // A wrong token: refused, and the page asks again, saying so.
    browser
        .fill(
            &format!("{token_dialog} input[name=token]"),
            "not-the-token",
        )
        .await;
    browser
        .click(&format!("{token_dialog} [type=submit]"))
        .await;
    browser
        .wait(
            "the page to ask again",
            &format!(
                "const d = document.querySelector('{token_dialog}'); \
                 return d && d.textContent.includes('refused')"
            ),
        )
        .await;

    // The read token: the list, then the live dashboard.
    browser
        .fill(&format!("{token_dialog} input[name=token]"), READ)
        .await;
    browser
        .click(&format!("{token_dialog} [type=submit]"))
        .await;
    browser
        .wait(
            "the dashboard in the list",
            "return !document.querySelector('dialog[open]') \
             && [...document.querySelectorAll('.dash-name')].some((n) => n.textContent === 'Secured')",
        )
        .await;
    assert_eq!(
        browser
            .eval("return localStorage.getItem('flowboard.token')")
            .await,
        json!(READ)
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('token-button').hidden")
            .await,
        false
    );
    browser.click(".dash-link").await;
    browser
        .wait(
            "the live dashboard",
            "return document.querySelector('.conn[data-state=live]')",
        )
        .await;
    ingest(
        &server,
        vec![
            event("secure.load", 30.0, &[]),
            event("secure.load", 12.0, &[]),
        ],
    )
    .await;
    wait_card_text(&browser, "number", ".number-value", "42").await;
    browser.screenshot("14-token-live-dashboard").await;

    // A change with the read token is refused (403): the page asks for one that may.
    browser.click("[data-action=rename]").await;
    browser
        .fill("dialog[open] input[name=text]", "Secured (renamed)")
        .await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait(
            "the page to ask for a stronger token",
            &format!(
                "const d = document.querySelector('{token_dialog}'); \
                 return d && d.textContent.includes('may not')"
            ),
        )
        .await;
    browser
        .fill(&format!("{token_dialog} input[name=token]"), ADMIN)
        .await;
    browser
        .click(&format!("{token_dialog} [type=submit]"))
        .await;
    browser
        .wait(
            "the new name",
            "return !document.querySelector('dialog[open]') \
             && document.querySelector('.board-name').textContent === 'Secured (renamed)'",
        )
        .await;

    // Remembered across a reload: no question, live again.
    browser
        .open(&server.url(&format!("/#/dashboards/{id}")))
        .await;
    browser
        .wait(
            "the live dashboard after a reload",
            "return document.querySelector('.conn[data-state=live]')",
        )
        .await;
    wait_card_text(&browser, "number", ".number-value", "42").await;
    assert_eq!(browser.eval(&asked).await, Value::Null);

    // Forgotten on request: the page starts over and asks again.
    browser.click("#token-button").await;
    browser.click("dialog[open] [type=submit]").await;
    browser
        .wait("the page to ask again after forgetting", &asked)
        .await;
    assert_eq!(
        browser
            .eval("return localStorage.getItem('flowboard.token')")
            .await,
        Value::Null
    );

    let errors = browser.page_errors().await;
    assert!(errors.is_empty(), "script errors on the page: {errors:?}");
    browser.close().await;
    server.stop();
}

/// The page and its assets are served beside the API, which they do not shadow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_beside_the_api() {
    let server = Server::start("ui-routes", &[]);
    let client = http();
    let page = client.get(server.url("/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let html = page.text().await.expect("page");
    let script = html
        .split("src=\"")
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|s| s.ends_with("/js/main.js"))
        .expect("the page loads js/main.js")
        .to_string();
    let module = client
        .get(server.url(&script))
        .send()
        .await
        .expect("GET main.js");
    assert_eq!(module.status(), 200);
    assert_eq!(
        header(&module, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(header(&module, "cache-control").contains("immutable"));

    let (status, body) = get(&server, "/dashboards").await;
    assert_eq!((status, body.is_array()), (200, true), "{body}");
    let (status, body) = get(&server, "/aggregations").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&server, "/no-such-page").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");
    let (status, _) = post(&server, "/", &json!({})).await;
    assert_eq!(status, 405);
    server.stop();
}
