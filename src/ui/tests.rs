//! The embedded page and assets: what is embedded, content types, caching, and that these
//! routes leave every other path to the rest of the server.

use std::path::{Path, PathBuf};

use warp::Filter;
use warp::http::StatusCode;

use super::*;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Every file under `dir`, as a path relative to `root` with `/` separators.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read web dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_file_under_web_is_embedded() {
    let mut on_disk = Vec::new();
    files_under(&web_dir(), &web_dir(), &mut on_disk);
    on_disk.retain(|path| path != "index.html");
    on_disk.sort();
    let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "web/ and ui::ASSETS differ: add new files to ASSETS"
    );
}

#[test]
fn module_imports_and_page_links_resolve_to_embedded_files() {
    let known = |path: &str| ASSETS.iter().any(|a| a.path == path);
    for link in INDEX_TEMPLATE.split("{{assets}}/").skip(1) {
        let path = link.split('"').next().unwrap_or_default();
        assert!(
            known(path),
            "index.html links {path}, which is not embedded"
        );
    }
    for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let text = std::str::from_utf8(asset.bytes).expect("utf-8 script");
        let dir = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        for import in text.split("from './").skip(1) {
            let file = import.split('\'').next().unwrap_or_default();
            let path = if dir.is_empty() {
                file.to_string()
            } else {
                format!("{dir}/{file}")
            };
            assert!(
                known(&path),
                "{} imports {path}, which is not embedded",
                asset.path
            );
        }
    }
}

async fn get(path: &str, headers: &[(&str, &str)]) -> warp::http::Response<bytes::Bytes> {
    let mut request = warp::test::request().method("GET").path(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .reply(&routes().recover(crate::error::recover))
        .await
}

fn header<'a>(response: &'a warp::http::Response<bytes::Bytes>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_links_versioned_assets_and_is_revalidated() {
    let response = get("/", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
    let body = std::str::from_utf8(response.body()).expect("utf-8 page");
    assert!(body.contains(&format!("/assets/{}/js/main.js", version())));
    assert!(!body.contains("{{assets}}"));

    let etag = header(&response, "etag").to_string();
    let again = get("/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.body().is_empty());
    let other = get("/", &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn assets_have_their_content_type_and_current_ones_are_immutable() {
    let cases = [
        ("app.css", "text/css; charset=utf-8"),
        ("js/main.js", "text/javascript; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ];
    for (file, content_type) in cases {
        let response = get(&format!("/assets/{}/{file}", version()), &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{file}");
        assert_eq!(header(&response, "content-type"), content_type, "{file}");
        assert_eq!(header(&response, "cache-control"), IMMUTABLE, "{file}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    }
    // A page from an older binary still gets files, but not cached for good.
    let stale = get("/assets/0123456789abcdef/app.css", &[]).await;
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(header(&stale, "cache-control"), "no-cache");
}

#[tokio::test]
async fn unknown_paths_are_json_404s_and_other_methods_fall_through() {
    for path in [
        format!("/assets/{}/missing.js", version()),
        format!("/assets/{}/../Cargo.toml", version()),
        "/assets".to_string(),
        "/index.html".to_string(),
    ] {
        let response = get(&path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(header(&response, "content-type").starts_with("application/json"));
    }
    let post = warp::test::request()
        .method("POST")
        .path("/dashboards")
        .reply(&routes().recover(crate::error::recover))
        .await;
    assert_eq!(
        post.status(),
        StatusCode::NOT_FOUND,
        "the UI routes must not claim API paths"
    );
}
