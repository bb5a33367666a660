//! The fleet map's world outline: world-atlas country shapes (vendored under
//! `assets/world-atlas`, with their licence), projected once on first request and served as
//! a cacheable SVG. No tile server, no internet.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const COUNTRIES: &str = include_str!("../assets/world-atlas/countries-110m.json");

/// The SVG and its entity tag, or why the vendored data could not be used.
fn world() -> &'static Result<(String, String), String> {
    static WORLD: OnceLock<Result<(String, String), String>> = OnceLock::new();
    WORLD.get_or_init(|| {
        let svg = engine::fleet::map::world_svg(COUNTRIES)?;
        let digest = Sha256::digest(svg.as_bytes());
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Ok((svg, format!("\"{tag}\"")))
    })
}

/// `GET /map/world.svg`: the same bytes until the next release, so browsers keep it a day and
/// revalidate with the entity tag.
pub async fn world_svg(headers: HeaderMap) -> Response {
    let (svg, etag) = match world() {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the world map cannot be built");
            return (StatusCode::INTERNAL_SERVER_ERROR, "world map unavailable").into_response();
        }
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "image/svg+xml")], svg.clone()).into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    // The image styles itself (light and dark) and runs nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    res
}
