//! Wall-screen (kiosk) mode: any page with `?kiosk` drops the navigation, shows large figures
//! and a last-updated stamp, and needs no interaction. With a playlist it moves on by itself:
//! `/?kiosk&playlist=/,/map,/alarms&every=30` shows each view for 30 s in turn. The rotation is
//! a `<meta http-equiv="refresh">`, so it runs without JavaScript too; live updates keep each
//! view current meanwhile.

use leptos::prelude::*;
use leptos_meta::Meta;

use crate::live::use_live;

/// Seconds a view is shown, by default and at the least and most.
pub const DEFAULT_EVERY_S: u32 = 30;
pub const MIN_EVERY_S: u32 = 2;
pub const MAX_EVERY_S: u32 = 3600;
/// Views in one playlist at most.
pub const MAX_VIEWS: usize = 20;

/// Where a kiosk goes next, read from the page's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub every_s: u32,
    pub views: Vec<String>,
    /// The next view's full URL (kiosk parameters included).
    pub next: String,
}

/// The rotation for the page at `path` given the URL's `playlist` and `every`; `Ok(None)`
/// without a playlist. A bad value is an error shown on the screen (a wall screen has nobody
/// to read a log).
pub fn rotation(
    path: &str,
    playlist: Option<&str>,
    every: Option<&str>,
) -> Result<Option<Rotation>, String> {
    let every_s = match every.map(str::trim).filter(|v| !v.is_empty()) {
        None => DEFAULT_EVERY_S,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|s| (MIN_EVERY_S..=MAX_EVERY_S).contains(s))
            .ok_or_else(|| {
                format!(
                    "every must be a whole number of seconds from {MIN_EVERY_S} to {MAX_EVERY_S}"
                )
            })?,
    };
    let Some(list) = playlist.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let views: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
    if views.len() > MAX_VIEWS {
        return Err(format!("a playlist holds at most {MAX_VIEWS} views"));
    }
    for v in &views {
        let local = v.starts_with('/') && !v.starts_with("//") && !v.contains('\\');
        if !local || v.chars().any(char::is_control) {
            return Err(format!(
                "playlist entry {v:?} is not a path on this server (start it with /)"
            ));
        }
    }
    let path_of = |v: &str| v.split('?').next().unwrap_or("").to_string();
    let next = match views.iter().position(|v| path_of(v) == path) {
        Some(i) => views[(i + 1) % views.len()].clone(),
        None => views[0].clone(),
    };
    let sep = if next.contains('?') { '&' } else { '?' };
    let url = format!(
        "{next}{sep}kiosk&playlist={}&every={every_s}",
        engine::url::encode_query_value(&views.join(","))
    );
    Ok(Some(Rotation {
        every_s,
        views,
        next: url,
    }))
}

/// The server's clock at the last refresh of this screen's data.
#[server(prefix = "/ui", endpoint = "clock", input = server_fn::codec::GetUrl)]
pub async fn get_server_clock(
    #[server(default)] background: bool,
) -> Result<String, crate::ApiError> {
    let _ = background;
    Ok(engine::time::Millis::now().to_iso())
}

/// The kiosk's top line: what this is, when it was last updated, and what comes next.
#[component]
pub fn KioskBar(rotation: Result<Option<Rotation>, String>) -> impl IntoView {
    let live = use_live();
    let refresh = crate::live::Refresh::<()>::new();
    let clock = Resource::new(
        move || live.generation.get(),
        move |g| get_server_clock(refresh.is_background(&(), g)),
    );
    let (meta, next, problem) = match rotation {
        Ok(Some(r)) => (
            Some(format!("{};url={}", r.every_s, r.next)),
            Some(format!(
                "Next view in {} s ({} of the playlist)",
                r.every_s,
                r.views.len()
            )),
            None,
        ),
        Ok(None) => (None, None, None),
        Err(e) => (None, None, Some(e)),
    };
    view! {
        {meta.map(|content| view! { <Meta http_equiv="refresh" content=content/> })}
        <header class="kiosk-bar" data-kiosk="">
            <span class="brand">
                <span class="brand-mark" aria-hidden="true">"◢◤"</span>
                "Murmuration"
            </span>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    clock.await.ok().map(|at| view! {
                        <p class="kiosk-stamp">
                            "Updated " <time datetime=at.clone() data-updated="">{at.replace('T', " ").replace('Z', " UTC")}</time>
                        </p>
                    })
                })}
            </Transition>
            {next.map(|n| view! { <p class="kiosk-next" data-kiosk-next="">{n}</p> })}
        </header>
        {problem.map(|p| view! { <p class="form-error kiosk-problem" role="alert" data-kiosk-problem="">{format!("Kiosk: {p}.")}</p> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_playlist_goes_round_and_keeps_the_kiosk_parameters() {
        let r = rotation("/", Some("/,/map?region=europe,/alarms"), Some("15"))
            .unwrap()
            .unwrap();
        assert_eq!(r.every_s, 15);
        assert_eq!(
            r.next,
            "/map?region=europe&kiosk&playlist=/%2C/map%3Fregion%3Deurope%2C/alarms&every=15"
        );
        let last = rotation("/alarms", Some("/,/map,/alarms"), None)
            .unwrap()
            .unwrap();
        assert!(last.next.starts_with("/?kiosk&"), "{}", last.next);
        assert!(last.next.ends_with(&format!("every={DEFAULT_EVERY_S}")));
        // A page not in the list starts it from the top.
        let other = rotation("/drill", Some("/map,/alarms"), None)
            .unwrap()
            .unwrap();
        assert!(other.next.starts_with("/map?kiosk&"));
        assert_eq!(rotation("/", None, None), Ok(None));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for (list, every) in [
            (Some("/,https://evil.example"), None),
            (Some("/,//evil.example"), None),
            (Some("map"), None),
            (Some("/"), Some("1")),
            (Some("/"), Some("soon")),
            (Some("/"), Some("99999")),
        ] {
            let e = rotation("/", list, every).unwrap_err();
            assert!(!e.is_empty(), "{list:?} {every:?}");
        }
        let many = vec!["/"; MAX_VIEWS + 1].join(",");
        assert!(rotation("/", Some(&many), None).is_err());
    }
}
