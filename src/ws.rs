//! `WS /stream/{dashboard_id}` (placeholder until the hub lands).

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::hub::Hub;

/// The WebSocket routes.
pub fn routes(_hub: Hub) -> BoxedFilter<(Response,)> {
    warp::path("stream")
        .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
        .boxed()
}
