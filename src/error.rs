//! Errors of the REST API, and the one place they become HTTP statuses and JSON bodies.
//!
//! Every error a client can trigger is answered with a 4xx/5xx status and the JSON body
//! `{"error": "human readable", "field": "..."}`, where `field` names the offending request
//! field (`name`, `widgets[2].window_seconds`, `update[0].filter.host`, or the path parameter
//! `dashboard_id` / `widget_id`) and is `null` when no single field is at fault. Handlers
//! return [`ApiError`]; failed route matches (unknown path, wrong method, ...) are turned into
//! the same JSON by [`recover`], which the server applies once, outermost.
//!
//! Limits (see [`crate::config::Limits`]) answer `413` (a body or a request too large), `409`
//! (a quota: dashboards, widgets per dashboard), `429` (a client's rate or connections, with
//! `Retry-After` when waiting helps) and `503` (the server's connections, with `Retry-After`).

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::ingest::IngestError;
use crate::store::StoreError;

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is invalid: malformed JSON, a field with a bad value, a bad id in the path.
    #[error("{message}")]
    BadRequest {
        /// The offending field, if one is at fault.
        field: Option<String>,
        /// What is wrong and what is expected instead.
        message: String,
    },
    /// Something the request names does not exist.
    #[error("{message}")]
    NotFound {
        /// The field (or path parameter) naming it, if any.
        field: Option<String>,
        /// What was not found.
        message: String,
    },
    /// The path exists, but not with this HTTP method.
    #[error("HTTP method not allowed for this path")]
    MethodNotAllowed,
    /// No token, or one that is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The endpoint is a WebSocket; the request did not ask for an upgrade.
    #[error("this endpoint needs a WebSocket upgrade")]
    UpgradeRequired,
    /// The request needs a `content-length` header.
    #[error("a content-length header is required")]
    LengthRequired,
    /// The request body is over the limit.
    #[error("request body too large{}", limit.map(|l| format!(" (the limit is {l} bytes)")).unwrap_or_default())]
    PayloadTooLarge {
        /// The limit in bytes, when known.
        limit: Option<u64>,
    },
    /// The request body's content type is not accepted here.
    #[error("unsupported content-type")]
    UnsupportedMediaType,
    /// The request would take the server past a quota (dashboards, widgets per dashboard).
    #[error("{message}")]
    LimitReached {
        /// The field that asks for too much, if one does.
        field: Option<String>,
        /// Which limit, and what to do.
        message: String,
    },
    /// This client asks for too much too fast (ingest rate, connections from its address).
    #[error("{message}")]
    TooManyRequests {
        /// Which limit, and what to do.
        message: String,
        /// Seconds after which a retry can succeed, when known.
        retry_after: Option<u64>,
    },
    /// The server is at capacity (WebSocket connections); retry later.
    #[error("{message}")]
    Busy {
        /// Which limit.
        message: String,
        /// Seconds after which to retry.
        retry_after: u64,
    },
    /// The dashboard store failed or refused the change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `POST /ingest` failed: an invalid event (named by index and field), or Kafka unavailable.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Anything else: a bug or an unexpected failure (details are logged, not sent).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 400 about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: None,
            message: message.into(),
        }
    }

    /// A 404 naming `field`.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The status, the field and the message sent for this error: the one place errors
    /// are mapped to HTTP.
    pub fn parts(&self) -> (StatusCode, Option<&str>, String) {
        match self {
            ApiError::BadRequest { field, message } => {
                (StatusCode::BAD_REQUEST, field.as_deref(), message.clone())
            }
            ApiError::NotFound { field, message } => {
                (StatusCode::NOT_FOUND, field.as_deref(), message.clone())
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, None, self.to_string()),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None, self.to_string()),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, None, self.to_string()),
            ApiError::LengthRequired => (StatusCode::LENGTH_REQUIRED, None, self.to_string()),
            ApiError::UpgradeRequired => (StatusCode::UPGRADE_REQUIRED, None, self.to_string()),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, None, self.to_string())
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, None, self.to_string())
            }
            ApiError::LimitReached { field, message } => {
                (StatusCode::CONFLICT, field.as_deref(), message.clone())
            }
            ApiError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, None, message.clone())
            }
            ApiError::Busy { message, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, None, message.clone())
            }
            ApiError::Store(StoreError::DashboardNotFound(_)) => (
                StatusCode::NOT_FOUND,
                Some("dashboard_id"),
                self.to_string(),
            ),
            ApiError::Store(StoreError::WidgetNotFound { .. }) => {
                (StatusCode::NOT_FOUND, Some("widget_id"), self.to_string())
            }
            ApiError::Store(StoreError::Conflict(_)) => {
                (StatusCode::CONFLICT, None, self.to_string())
            }
            ApiError::Store(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal error in the dashboard store; see the server log".into(),
            ),
            ApiError::Ingest(IngestError::Invalid(event)) => (
                StatusCode::BAD_REQUEST,
                Some(event.field.as_ref()).filter(|f| !f.is_empty()),
                self.to_string(),
            ),
            ApiError::Ingest(IngestError::Empty) => {
                (StatusCode::BAD_REQUEST, None, self.to_string())
            }
            ApiError::Ingest(IngestError::TooManyEvents { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, None, self.to_string())
            }
            ApiError::Ingest(IngestError::RateLimited { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, None, self.to_string())
            }
            ApiError::Ingest(IngestError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                format!("{self}; nothing of this request was acknowledged, retry later"),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal error; see the server log".into(),
            ),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The `Retry-After` header's seconds, for errors a later retry can get past.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } => *retry_after,
            ApiError::Busy { retry_after, .. } => Some(*retry_after),
            ApiError::Ingest(IngestError::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }

    /// The response for this error (server errors are logged here, with their details).
    pub fn response(&self) -> Response {
        let (status, field, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let index = match self {
            ApiError::Ingest(IngestError::Invalid(event)) => event.index,
            _ => None,
        };
        let body = ErrorBody {
            error: &message,
            field,
            index,
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), status).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                warp::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert("retry-after", warp::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    field: Option<&'a str>,
    /// For ingest: the index of the bad event in the request's array.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// Lets filters (path ids, body reading) reject with an [`ApiError`] that [`recover`] answers.
impl warp::reject::Reject for ApiError {}

/// Answers a rejected request with a JSON error. Apply it once, to all routes combined
/// (`routes.recover(flowboard::error::recover)`): a recovered filter never falls through to
/// the routes `or`-ed after it.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(match rejection.find::<ApiError>() {
        Some(error) => error.response(),
        None => rejection_error(&rejection).response(),
    })
}

/// The error for one of warp's own rejections, preferring (like warp) the most specific one
/// over "wrong method" over "no such path".
fn rejection_error(rejection: &Rejection) -> ApiError {
    use warp::reject::{
        InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader,
        PayloadTooLarge, UnsupportedMediaType,
    };
    if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge { limit: None }
    } else if rejection.find::<UnsupportedMediaType>().is_some() {
        ApiError::UnsupportedMediaType
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::LengthRequired
    } else if let Some(error) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::bad_request(error.to_string())
    } else if let Some(error) = rejection.find::<InvalidHeader>() {
        ApiError::bad_field(error.name(), error.to_string())
    } else if let Some(error) = rejection.find::<MissingHeader>() {
        ApiError::bad_field(error.name(), error.to_string())
    } else if let Some(error) = rejection.find::<InvalidQuery>() {
        ApiError::bad_request(error.to_string())
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.is_not_found() {
        ApiError::NotFound {
            field: None,
            message: "no such route".into(),
        }
    } else {
        ApiError::Internal(format!("unhandled rejection: {rejection:?}"))
    }
}
