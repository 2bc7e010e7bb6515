//! The WebSocket handshake (RFC 6455, section 4.2) on warp, in place of `warp::ws()`, whose
//! `Ws` does not expose tungstenite's buffer sizes: with their defaults (128 KiB each, the read
//! buffer zero-filled by its first read) an idle stream costs the server ~139 KB. Here the
//! stream is built with [`socket_config`].
//!
//! [`request`] accepts what warp's `ws()` accepts (on a `GET` route): a `Connection` header
//! listing `upgrade`, `Upgrade: websocket` (any case), `Sec-WebSocket-Version: 13` and a
//! `Sec-WebSocket-Key`. [`Upgrade::accept`] answers `101 Switching Protocols` and runs the
//! stream on the connection hyper hands over once the response is written.

use std::convert::Infallible;
use std::future::Future;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::{Response as HttpResponse, StatusCode};
use warp::reply::Response;

use super::MAX_CLIENT_MESSAGE;
use super::connection::{MAX_WRITE_BUFFER, READ_BUFFER, WRITE_BUFFER};

/// An upgraded stream.
pub(super) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// The configuration every stream is built with: small buffers (a client only ever sends a
/// snapshot request, pongs and a close) and client messages limited to [`MAX_CLIENT_MESSAGE`].
pub(super) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// A request for a WebSocket upgrade, ready to be accepted.
pub(super) struct Upgrade {
    /// The client's `Sec-WebSocket-Key`.
    key: HeaderValue,
    /// The connection, once hyper has written the `101` response; absent when the request did
    /// not come through hyper's HTTP/1 server (as under `warp::test`).
    on_upgrade: Option<OnUpgrade>,
}

/// The upgrade the request asks for, or `None` if it is not a WebSocket upgrade request.
/// Never rejects. The method is left to the route (`warp::get()`).
pub(super) fn request() -> impl Filter<Extract = (Option<Upgrade>,), Error = Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .map(|headers: HeaderMap, on_upgrade: Option<OnUpgrade>| {
            websocket_key(&headers).map(|key| Upgrade { key, on_upgrade })
        })
}

/// The `Sec-WebSocket-Key` of a WebSocket upgrade request, checked as warp's `ws()` does.
fn websocket_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_has_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade_is_websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let version_is_13 = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|value| value == "13");
    if connection_has_upgrade && upgrade_is_websocket && version_is_13 {
        headers.get(header::SEC_WEBSOCKET_KEY).cloned()
    } else {
        None
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and, once hyper hands over the connection, runs
    /// `stream` on it as a WebSocket built with [`socket_config`].
    pub(super) fn accept<F, R>(self, stream: F) -> Response
    where
        F: FnOnce(Socket) -> R + Send + 'static,
        R: Future<Output = ()> + Send + 'static,
    {
        match self.on_upgrade {
            Some(on_upgrade) => {
                tokio::spawn(async move {
                    match on_upgrade.await {
                        Ok(upgraded) => {
                            let io = TokioIo::new(upgraded);
                            let config = Some(socket_config());
                            let socket =
                                WebSocketStream::from_raw_socket(io, Role::Server, config).await;
                            stream(socket).await;
                        }
                        Err(err) => tracing::debug!(%err, "websocket upgrade failed"),
                    }
                });
            }
            None => tracing::debug!("no connection to upgrade (not served by hyper's HTTP/1)"),
        }
        let accept = derive_accept_key(self.key.as_bytes());
        let mut response = HttpResponse::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::try_from(accept).expect("base64 is a valid header value"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn the_upgrade_headers_are_checked_as_warp_does() {
        let valid = [
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ];
        assert_eq!(
            websocket_key(&headers(&valid))
                .as_ref()
                .map(|k| k.as_bytes()),
            Some(KEY.as_bytes())
        );
        // Firefox sends `Connection: keep-alive, Upgrade`; the option may also be on a line of
        // its own, and the upgrade token in any case.
        let firefox = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ];
        assert!(websocket_key(&headers(&firefox)).is_some());
        let two_lines = [
            ("connection", "keep-alive"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ];
        assert!(websocket_key(&headers(&two_lines)).is_some());

        for missing in 0..valid.len() {
            let mut pairs = valid.to_vec();
            pairs.remove(missing);
            assert!(websocket_key(&headers(&pairs)).is_none(), "{pairs:?}");
        }
        let wrong = [
            ("connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("sec-websocket-version", "8"),
        ];
        for (name, value) in wrong {
            let mut pairs = valid.to_vec();
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
            assert!(websocket_key(&headers(&pairs)).is_none(), "{pairs:?}");
        }
    }

    #[test]
    fn streams_are_built_with_small_buffers_and_the_client_message_limit() {
        let config = socket_config();
        assert_eq!(config.read_buffer_size, 4 * 1024);
        assert_eq!(config.write_buffer_size, 8 * 1024);
        assert_eq!(config.max_write_buffer_size, MAX_WRITE_BUFFER);
        assert_eq!(config.max_message_size, Some(MAX_CLIENT_MESSAGE));
        assert_eq!(config.max_frame_size, Some(MAX_CLIENT_MESSAGE));
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        let upgrade = Upgrade {
            key: HeaderValue::from_static(KEY),
            on_upgrade: None,
        };
        let response = upgrade.accept(|_socket| async {});
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let headers = response.headers();
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(
            headers["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
