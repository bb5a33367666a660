//! The fleet's alarms: one filterable, paged list of every subcloud's alarms, and
//! acknowledging them (operators and admins), with the server functions behind it.

mod page;
mod status;

pub use page::AlarmsPage;
pub use status::StatusPage;
pub(crate) use status::{status_tile, StatusBody};

use engine::health::{AlarmPage, AlarmQuery, AlarmSeverity, AlarmState, StatusDigest};
use leptos::prelude::*;

use crate::ApiError;

/// The fleet's problems at a glance (the status page).
#[server(prefix = "/ui", endpoint = "status", input = server_fn::codec::GetUrl)]
pub async fn get_status_digest(
    #[server(default)] background: bool,
) -> Result<StatusDigest, ApiError> {
    let _ = background;
    Ok(crate::error::engine()?.status_digest().await?)
}

/// One page of the fleet's alarms. The query travels as separate arguments: an empty
/// severity list must survive the URL encoding (it is simply absent).
#[server(prefix = "/ui", endpoint = "alarms/page", input = server_fn::codec::GetUrl)]
pub async fn get_alarm_page(
    #[server(default)] severities: Vec<AlarmSeverity>,
    state: AlarmState,
    subcloud: Option<String>,
    acknowledged: Option<bool>,
    page: u32,
    per_page: u32,
    // Read by the server's gate (see `crate::live::Refresh`).
    #[server(default)] background: bool,
) -> Result<AlarmPage, ApiError> {
    let _ = background;
    let query = AlarmQuery {
        severities,
        state,
        subcloud,
        acknowledged,
        page,
        per_page,
    };
    Ok(crate::error::engine()?.alarm_page(&query).await?)
}

/// Calls [`get_alarm_page`] with a query.
pub async fn fetch_alarm_page(q: AlarmQuery, background: bool) -> Result<AlarmPage, ApiError> {
    get_alarm_page(
        q.severities,
        q.state,
        q.subcloud,
        q.acknowledged,
        q.page,
        q.per_page,
        background,
    )
    .await
}

/// Acknowledges alarms (operators and admins): `one` (a row's own button) or else the
/// checked `ids`. Answers how many changed. A plain form post (no JavaScript) is redirected
/// back to the list it came from (`back`: that list's query string) with the count in the URL;
/// a refusal goes back there too, with the error for the page to show.
#[server(prefix = "/ui", endpoint = "alarms/acknowledge")]
pub async fn acknowledge_alarms(
    #[server(default)] ids: Vec<i64>,
    one: Option<i64>,
    #[server(default)] back: String,
) -> Result<u64, ApiError> {
    let actor = crate::auth::actor()?;
    let chosen = match one {
        Some(id) => vec![id],
        None => ids,
    };
    let plain_form = use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    match crate::error::engine()?
        .acknowledge_alarms(&actor, &chosen)
        .await
    {
        Ok(n) => {
            if plain_form {
                leptos_axum::redirect(&back_with_count(&back, n));
            }
            Ok(n)
        }
        Err(e) => {
            let e = ApiError::from(e);
            if plain_form {
                // The error travels back in the redirect's URL (Leptos' form handling); an
                // error status here would show the browser the raw answer instead.
                if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
                    r.set_status(http::StatusCode::FOUND);
                }
            }
            Err(e)
        }
    }
}

#[cfg(any(feature = "ssr", test))]
/// `/alarms` with the filters of `back` (re-encoded from a valid query only, so it can never
/// point anywhere else) and `acknowledged=N` for the page's message.
pub fn back_with_count(back: &str, n: u64) -> String {
    let pairs: Vec<(String, String)> = back
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((
                engine::url::decode_component(k)?,
                engine::url::decode_component(v)?,
            ))
        })
        .collect();
    let query = AlarmQuery::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_default();
    let qs = query.to_query_string();
    let sep = if qs.is_empty() { '?' } else { '&' };
    format!("/alarms{qs}{sep}acknowledged={n}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::url::decode_component;

    #[test]
    fn the_way_back_keeps_valid_filters_and_nothing_else() {
        assert_eq!(back_with_count("", 2), "/alarms?acknowledged=2");
        assert_eq!(
            back_with_count(
                "?severity=critical&severity=major&state=all&subcloud=lyon-0001",
                1
            ),
            "/alarms?severity=critical&severity=major&state=all&subcloud=lyon-0001&acknowledged=1"
        );
        // Encoded values are decoded and encoded again.
        assert_eq!(
            back_with_count("subcloud=a%20b&ack=no", 3),
            "/alarms?subcloud=a%20b&ack=no&acknowledged=3"
        );
        // Junk, bad filters and foreign keys fall back to the plain list.
        assert_eq!(
            back_with_count("severity=fatal", 1),
            "/alarms?acknowledged=1"
        );
        assert_eq!(
            back_with_count("%zz=1&//evil.example", 1),
            "/alarms?acknowledged=1"
        );
        assert_eq!(
            back_with_count("next=https://evil.example", 1),
            "/alarms?acknowledged=1"
        );
        // The message of an earlier acknowledgement is not carried along.
        assert_eq!(
            back_with_count("ack=no&acknowledged=4", 1),
            "/alarms?ack=no&acknowledged=1"
        );
    }

    #[test]
    fn form_components_decode() {
        assert_eq!(decode_component("a+b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(decode_component("%C3%A9").as_deref(), Some("é"));
        assert_eq!(decode_component("%FF"), None);
        assert_eq!(decode_component("%4"), None);
    }
}
