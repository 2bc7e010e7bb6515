//! Bearer-token authentication: who may ingest events, who may change dashboards, who may read.
//!
//! Three optional tokens, each guarding one kind of request:
//!
//! | token | guards | also accepted |
//! |---|---|---|
//! | ingest | `POST /ingest` | the admin token |
//! | admin | dashboard and widget writes (`POST`, `PATCH`, `DELETE /dashboards...`) | — |
//! | read | dashboard reads, snapshots, `WS /stream/...` | the admin token |
//!
//! A request presents its token as `Authorization: Bearer <token>`; WebSocket streams may use
//! `?token=<token>` instead, because browsers cannot set headers on a WebSocket. A role whose
//! token is not configured is open. Tokens are compared in constant time. No token: `401`; a
//! token that is none of the configured ones: `401`; a valid token of another role: `403`.
//! Health, metrics and the web page's static files are open (the page asks for a token when
//! the API wants one).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::{Filter, Rejection};

use crate::error::ApiError;

/// A kind of request, by what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Write events.
    Ingest,
    /// Change dashboards and widgets.
    Admin,
    /// Read dashboards, values and streams.
    Read,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Admin => "admin",
            Role::Read => "read",
        }
    }
}

/// The configured tokens; `None` leaves that role open.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Guards `POST /ingest`.
    pub ingest: Option<String>,
    /// Guards dashboard and widget writes.
    pub admin: Option<String>,
    /// Guards reads and streams.
    pub read: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "set" } else { "open" };
        f.debug_struct("Tokens")
            .field("ingest", &set(&self.ingest))
            .field("admin", &set(&self.admin))
            .field("read", &set(&self.read))
            .finish()
    }
}

/// Checks requests against [`Tokens`]. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tokens: Arc<Tokens>,
}

fn same(presented: &str, expected: &Option<String>) -> bool {
    expected
        .as_deref()
        .is_some_and(|expected| bool::from(presented.as_bytes().ct_eq(expected.as_bytes())))
}

impl Auth {
    /// Checks against `tokens`.
    pub fn new(tokens: Tokens) -> Auth {
        Auth {
            tokens: Arc::new(tokens),
        }
    }

    /// Whether any token is configured.
    pub fn any(&self) -> bool {
        self.tokens.ingest.is_some() || self.tokens.admin.is_some() || self.tokens.read.is_some()
    }

    /// Whether a request presenting `presented` may act as `role`.
    pub fn check(&self, role: Role, presented: Option<&str>) -> Result<(), ApiError> {
        let tokens = &*self.tokens;
        let guard = match role {
            Role::Ingest => &tokens.ingest,
            Role::Admin => &tokens.admin,
            Role::Read => &tokens.read,
        };
        if guard.is_none() {
            return Ok(());
        }
        let Some(presented) = presented else {
            return Err(ApiError::Unauthorized(format!(
                "this request needs the {} token: send `Authorization: Bearer <token>`",
                role.name()
            )));
        };
        let admin = same(presented, &tokens.admin);
        let allowed = match role {
            Role::Ingest => same(presented, &tokens.ingest) || admin,
            Role::Admin => admin,
            Role::Read => same(presented, &tokens.read) || admin,
        };
        if allowed {
            return Ok(());
        }
        let known = same(presented, &tokens.ingest) || same(presented, &tokens.read) || admin;
        if known {
            Err(ApiError::Forbidden(format!(
                "this token may not be used for {} requests",
                role.name()
            )))
        } else {
            Err(ApiError::Unauthorized("the token is not valid".into()))
        }
    }

    /// A filter letting requests through as `role` (token in the `Authorization` header).
    pub fn require(
        &self,
        role: Role,
    ) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
        let auth = self.clone();
        warp::header::optional::<String>("authorization")
            .and_then(move |header: Option<String>| {
                let auth = auth.clone();
                async move {
                    let token = header.as_deref().and_then(bearer);
                    auth.check(role, token).map_err(warp::reject::custom)
                }
            })
            .untuple_one()
    }

    /// Like [`Auth::require`], also accepting `?token=` (for WebSocket streams).
    pub fn require_allowing_query(
        &self,
        role: Role,
    ) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
        let auth = self.clone();
        warp::header::optional::<String>("authorization")
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and_then(move |header: Option<String>, query: String| {
                let auth = auth.clone();
                async move {
                    let from_query = query_token(&query);
                    let token = header.as_deref().and_then(bearer).or(from_query.as_deref());
                    auth.check(role, token).map_err(warp::reject::custom)
                }
            })
            .untuple_one()
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `token` parameter of a query string.
fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(&[high, low])) => {
                let hex = |b: u8| (b as char).to_digit(16);
                hex(high).zip(hex(low)).map(|(h, l)| (h * 16 + l) as u8)
            }
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(Tokens {
            ingest: Some("ingest-secret".into()),
            admin: Some("admin-secret".into()),
            read: Some("read-secret".into()),
        })
    }

    fn status(result: Result<(), ApiError>) -> u16 {
        match result {
            Ok(()) => 200,
            Err(error) => error.status().as_u16(),
        }
    }

    #[test]
    fn each_role_takes_its_token_or_the_admin_token() {
        let auth = auth();
        for (role, own) in [
            (Role::Ingest, "ingest-secret"),
            (Role::Read, "read-secret"),
            (Role::Admin, "admin-secret"),
        ] {
            assert_eq!(status(auth.check(role, Some(own))), 200, "{role:?}");
            assert_eq!(
                status(auth.check(role, Some("admin-secret"))),
                200,
                "{role:?}"
            );
            assert_eq!(status(auth.check(role, None)), 401, "{role:?}");
            assert_eq!(status(auth.check(role, Some("nope"))), 401, "{role:?}");
        }
        assert_eq!(status(auth.check(Role::Admin, Some("ingest-secret"))), 403);
        assert_eq!(status(auth.check(Role::Admin, Some("read-secret"))), 403);
        assert_eq!(status(auth.check(Role::Ingest, Some("read-secret"))), 403);
        assert_eq!(status(auth.check(Role::Read, Some("ingest-secret"))), 403);
    }

    #[test]
    fn roles_without_a_token_are_open() {
        let auth = Auth::new(Tokens {
            admin: Some("a".into()),
            ..Tokens::default()
        });
        assert_eq!(status(auth.check(Role::Read, None)), 200);
        assert_eq!(status(auth.check(Role::Ingest, None)), 200);
        assert_eq!(status(auth.check(Role::Admin, None)), 401);
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(
            query_token("a=1&token=x%2By%20z&b=2").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_token("a=1").as_deref(), None);
    }

    #[test]
    fn debug_does_not_print_tokens() {
        assert!(!format!("{:?}", auth()).contains("secret"));
    }
}
