//! The web dashboard: the page at `/` and its assets, compiled into the binary.
//!
//! The files under `web/` are embedded with `include_bytes!`, so `flowboard serve` needs no
//! other files, no separate web server and no build step besides cargo's. The page is plain
//! HTML, CSS and JavaScript modules (see the README's web dashboard section); it talks to the same REST and
//! WebSocket endpoints as any other client.
//!
//! | path | answer | caching |
//! |---|---|---|
//! | `GET /` | `index.html`, its asset links pointing at `/assets/{version}/` | `no-cache` + `ETag` (revalidated, `304` when unchanged) |
//! | `GET /assets/{version}/{file}` | the embedded file, with its content type | a year, `immutable`, when `version` is the current one; otherwise `no-cache` |
//!
//! `version` is a fingerprint of every embedded file, so a new binary with changed assets
//! changes every asset URL and browsers never mix old and new files; JavaScript modules import
//! each other by relative path and so stay within one version. An unknown path is left to the
//! server's other routes (and to [`crate::error::recover`], which answers a JSON 404).
//!
//! The routes match the path before the method, so they never turn another route's "no such
//! path" into "method not allowed".

use std::sync::LazyLock;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Response as HttpResponse, StatusCode, header};
use warp::reply::Response;

/// One embedded file.
struct Asset {
    /// Its path under `web/` (and under `/assets/{version}/`).
    path: &'static str,
    /// Its contents.
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal) => {
        Asset {
            path: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

/// The page, with `{{assets}}` where the versioned asset prefix goes.
const INDEX_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));

/// Every file the page loads. A unit test checks that this lists every file under `web/`.
const ASSETS: &[Asset] = &[
    asset!("app.css"),
    asset!("boot.js"),
    asset!("icon.svg"),
    asset!("js/api.js"),
    asset!("js/board.js"),
    asset!("js/chart.js"),
    asset!("js/dialogs.js"),
    asset!("js/dom.js"),
    asset!("js/editor.js"),
    asset!("js/editor_fields.js"),
    asset!("js/format.js"),
    asset!("js/gauge.js"),
    asset!("js/history.js"),
    asset!("js/home.js"),
    asset!("js/layout.js"),
    asset!("js/main.js"),
    asset!("js/stream.js"),
    asset!("js/widgets.js"),
];

/// Assets of the current version may be cached this long (a year): their URL changes with them.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is revalidated on every use.
const REVALIDATE: &str = "no-cache";
/// The page loads only its own scripts, styles and images, and talks only to its own origin
/// (`'self'` covers same-origin WebSockets).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The fingerprint of every embedded file, as 16 hex digits.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Fnv1a::new();
    hash.write(INDEX_TEMPLATE.as_bytes());
    for asset in ASSETS {
        hash.write(asset.path.as_bytes());
        hash.write(&[0]);
        hash.write(asset.bytes);
    }
    format!("{:016x}", hash.0)
});

/// `index.html` with its asset links filled in.
static INDEX: LazyLock<String> =
    LazyLock::new(|| INDEX_TEMPLATE.replace("{{assets}}", &format!("/assets/{}", *VERSION)));

/// The web UI's routes: `GET /` and `GET /assets/{version}/{file}`.
pub fn routes() -> BoxedFilter<(Response,)> {
    let page = warp::path::end()
        .and(warp::get())
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|etag: Option<String>| index(etag.as_deref()));
    let assets = warp::path("assets")
        .and(warp::path::param::<String>())
        .and(warp::path::tail())
        .and(warp::get())
        .and_then(|version: String, tail: warp::path::Tail| async move {
            asset(&version, tail.as_str()).ok_or_else(warp::reject::not_found)
        });
    page.or(assets).unify().boxed()
}

/// The current asset version (changes whenever an embedded file does).
pub fn version() -> &'static str {
    &VERSION
}

fn index(if_none_match: Option<&str>) -> Response {
    let etag = format!("\"{}\"", *VERSION);
    let unchanged = if_none_match.is_some_and(|given| {
        given
            .split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    });
    let (status, body) = if unchanged {
        (StatusCode::NOT_MODIFIED, String::new())
    } else {
        (StatusCode::OK, INDEX.clone())
    };
    let mut response = HttpResponse::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    security_headers(headers);
    response
}

/// The embedded file at `path`, cached for good when `version` is current.
fn asset(version: &str, path: &str) -> Option<Response> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    let mut response = HttpResponse::new(asset.bytes.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    let cache = if version == *VERSION {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    security_headers(headers);
    Some(response)
}

fn security_headers(headers: &mut warp::http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The content type of an embedded file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// 64-bit FNV-1a: a stable fingerprint (std's hasher may change between Rust releases).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests;
