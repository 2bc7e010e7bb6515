//! Request plumbing shared by the routes: ids in the path and size-limited bodies.

use futures_util::StreamExt;
use uuid::Uuid;
use warp::{Buf, Filter, Rejection};

use crate::error::ApiError;

/// A UUID path segment; anything else is a 400 naming `field` (not a 404: the route exists).
pub(super) fn id(field: &'static str) -> impl Filter<Extract = (Uuid,), Error = Rejection> + Copy {
    warp::path::param::<String>().and_then(move |segment: String| async move {
        Uuid::parse_str(&segment).map_err(|_| {
            warp::reject::custom(ApiError::bad_field(
                field,
                format!(
                    "{field} must be a UUID, got {:?}",
                    super::validate::clip(&segment)
                ),
            ))
        })
    })
}

/// The whole request body, at most `limit` bytes (a 413 otherwise, whether or not the client
/// announced the length). The content type is not checked: the body must simply be JSON.
pub(crate) fn body(limit: u64) -> impl Filter<Extract = (Vec<u8>,), Error = Rejection> + Copy {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, stream| async move {
            read_limited(length, stream, limit)
                .await
                .map_err(warp::reject::custom)
        })
}

pub(super) async fn read_limited<S, B>(
    length: Option<u64>,
    stream: S,
    limit: u64,
) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = || ApiError::PayloadTooLarge { limit: Some(limit) };
    if length.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let expected = length.map_or(0, |length| usize::try_from(length).unwrap_or(0));
    let mut body = Vec::with_capacity(expected);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|error| ApiError::bad_request(format!("reading the request body: {error}")))?;
        let total = u64::try_from(body.len() + chunk.remaining()).unwrap_or(u64::MAX);
        if total > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let len = part.len();
            body.extend_from_slice(part);
            chunk.advance(len);
        }
    }
    Ok(body)
}
