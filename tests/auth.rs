//! Authentication: every write and, with a read token, every read, without a token, with a
//! wrong token, with a token of another role, and with the right one.

mod common;

use common::*;
use serde_json::{Value, json};

const INGEST: &str = "ingest-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const READ: &str = "read-token-0123456789";

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let client = http();
    let url = server.url(path);
    let mut request = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        "PATCH" => client.patch(url),
        "DELETE" => client.delete(url),
        other => panic!("method {other}"),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("Bearer")
        );
    }
    if status >= 400 {
        let body: Value = response.json().await.expect("JSON error body");
        assert!(body["error"].is_string(), "{body}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_its_token() {
    let token_file = temp_data_dir("auth-token").join("admin.token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).expect("token file");
    let server = Server::start_with_env(
        "auth",
        &[
            "--ingest-token",
            INGEST,
            "--admin-token-file",
            token_file.to_str().expect("path"),
        ],
        &[("FLOWBOARD_READ_TOKEN", READ)],
    );

    let widget = json!({"metric_name": "m", "aggregation": "count", "window_seconds": 60});
    let dashboard = json!({"name": "d", "widgets": [widget]});
    // Create one dashboard with the admin token to have ids to read and write.
    let response = http()
        .post(server.url("/dashboards"))
        .bearer_auth(ADMIN)
        .json(&dashboard)
        .send()
        .await
        .expect("create");
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.expect("dashboard");
    let id = created["dashboard_id"].as_str().expect("id").to_string();
    let w = created["widgets"][0]["widget_id"]
        .as_str()
        .expect("widget")
        .to_string();

    let event = json!([{"metric_name": "m", "value": 1}]);
    // (method, path, body, the role's own token)
    let routes: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("POST", "/ingest".into(), Some(event.clone()), INGEST),
        ("POST", "/dashboards".into(), Some(dashboard.clone()), ADMIN),
        (
            "PATCH",
            format!("/dashboards/{id}"),
            Some(json!({"name": "renamed"})),
            ADMIN,
        ),
        (
            "PATCH",
            format!("/dashboards/{id}/widgets"),
            Some(json!({"add": [widget]})),
            ADMIN,
        ),
        ("GET", "/dashboards".into(), None, READ),
        ("GET", format!("/dashboards/{id}"), None, READ),
        (
            "GET",
            format!("/dashboards/{id}/widgets/{w}/snapshot"),
            None,
            READ,
        ),
        ("GET", "/aggregations".into(), None, READ),
    ];
    for (method, path, body, own) in &routes {
        let what = format!("{method} {path}");
        assert_eq!(
            call(&server, method, path, None, body.clone()).await,
            401,
            "{what} without a token"
        );
        assert_eq!(
            call(
                &server,
                method,
                path,
                Some("wrong-token-0000000000"),
                body.clone()
            )
            .await,
            401,
            "{what} with a wrong token"
        );
        let other = if *own == READ { INGEST } else { READ };
        assert_eq!(
            call(&server, method, path, Some(other), body.clone()).await,
            403,
            "{what} with another role's token"
        );
        let ok = call(&server, method, path, Some(own), body.clone()).await;
        assert!((200..300).contains(&ok), "{what} with its token: {ok}");
        let ok = call(&server, method, path, Some(ADMIN), body.clone()).await;
        assert!(
            (200..300).contains(&ok),
            "{what} with the admin token: {ok}"
        );
    }
    // Delete last (it removes the dashboard).
    let path = format!("/dashboards/{id}");
    assert_eq!(call(&server, "DELETE", &path, None, None).await, 401);
    assert_eq!(call(&server, "DELETE", &path, Some(READ), None).await, 403);
    assert_eq!(call(&server, "DELETE", &path, Some(ADMIN), None).await, 204);

    // The WebSocket stream takes the read token in the query (browsers can't set headers).
    let response = http()
        .post(server.url("/dashboards"))
        .bearer_auth(ADMIN)
        .json(&dashboard)
        .send()
        .await
        .expect("create");
    let created: Value = response.json().await.expect("dashboard");
    let id = created["dashboard_id"].as_str().expect("id").to_string();
    let denied = tokio_tungstenite::connect_async(server.ws_url(&format!("/stream/{id}"))).await;
    assert!(denied.is_err(), "a stream without a token is refused");
    let denied =
        tokio_tungstenite::connect_async(server.ws_url(&format!("/stream/{id}?token=wrong"))).await;
    assert!(denied.is_err(), "a stream with a wrong token is refused");
    let mut stream =
        Stream::connect_url(&server.ws_url(&format!("/stream/{id}?token={READ}"))).await;
    let first = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("snapshot");
    assert_eq!(first["type"], "snapshot");

    // Health and metrics stay open.
    assert_eq!(call(&server, "GET", "/healthz", None, None).await, 200);
    assert_eq!(call(&server, "GET", "/metrics", None, None).await, 200);
}

#[test]
fn serving_beyond_loopback_needs_tokens_or_insecure() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flowboard"))
        .args(["serve", "--http", "0.0.0.0:0", "--data-dir"])
        .arg(temp_data_dir("auth-bind"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--ingest-token") && stderr.contains("--insecure"),
        "{stderr}"
    );
}
