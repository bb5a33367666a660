//! Small pieces shared by pages: status badges and error panels.

use leptos::prelude::*;

use crate::ApiError;
use engine::fleet::{AvailabilityStatus, DeployStatus, ManagementState, SyncStatus};
use engine::health::{AlarmSeverity, AlarmStatus};

/// Visual tone of a state: grey-first (ISA-101), colour only where attention is needed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Neutral,
    Info,
    Warning,
    Major,
    Critical,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "tone-ok",
            Tone::Neutral => "tone-neutral",
            Tone::Info => "tone-info",
            Tone::Warning => "tone-warning",
            Tone::Major => "tone-major",
            Tone::Critical => "tone-critical",
        }
    }

    /// A shape per tone, so state never depends on colour alone.
    fn glyph(self) -> &'static str {
        match self {
            Tone::Ok => "●",
            Tone::Neutral => "○",
            Tone::Info => "◐",
            Tone::Warning => "▼",
            Tone::Major => "▲",
            Tone::Critical => "◆",
        }
    }
}

/// A state's text with its tone's shape and colour.
#[component]
pub fn Badge(#[prop(into)] text: String, tone: Tone) -> impl IntoView {
    view! {
        <span class=format!("badge {}", tone.class())>
            <span class="glyph" aria-hidden="true">{tone.glyph()}</span>
            {text}
        </span>
    }
}

pub fn availability_tone(v: AvailabilityStatus) -> Tone {
    match v {
        AvailabilityStatus::Online => Tone::Ok,
        AvailabilityStatus::Offline => Tone::Critical,
    }
}

pub fn management_tone(v: ManagementState) -> Tone {
    match v {
        ManagementState::Managed => Tone::Neutral,
        ManagementState::Unmanaged => Tone::Info,
    }
}

pub fn sync_tone(v: SyncStatus) -> Tone {
    match v {
        SyncStatus::InSync => Tone::Ok,
        SyncStatus::OutOfSync => Tone::Major,
        SyncStatus::Unknown => Tone::Neutral,
    }
}

pub fn alarm_status_tone(v: AlarmStatus) -> Tone {
    match v {
        AlarmStatus::Critical => Tone::Critical,
        AlarmStatus::Degraded => Tone::Major,
        AlarmStatus::Unknown => Tone::Warning,
        AlarmStatus::Ok => Tone::Ok,
        AlarmStatus::Disabled => Tone::Neutral,
    }
}

pub fn severity_tone(v: AlarmSeverity) -> Tone {
    match v {
        AlarmSeverity::Critical => Tone::Critical,
        AlarmSeverity::Major => Tone::Major,
        AlarmSeverity::Minor => Tone::Warning,
        AlarmSeverity::Warning => Tone::Info,
    }
}

pub fn deploy_tone(v: DeployStatus) -> Tone {
    if v.is_failure() {
        Tone::Critical
    } else if v.is_in_progress() {
        Tone::Info
    } else if v == DeployStatus::Complete {
        Tone::Ok
    } else {
        Tone::Neutral
    }
}

/// An error panel with the message and, for internal errors, a hint to retry.
#[component]
pub fn ErrorPanel(error: ApiError) -> impl IntoView {
    let title = match &error {
        ApiError::NotFound(_) => "Not found",
        ApiError::Invalid { .. } => "Invalid request",
        ApiError::Internal => "Server error",
        ApiError::Unauthenticated => "Signed out",
        ApiError::Forbidden(_) => "Not allowed",
        ApiError::Conflict(_) => "Not possible",
        ApiError::Transport(_) => "Connection problem",
    };
    view! {
        <div class="error-panel" role="alert">
            <strong>{title}</strong>
            <p>{error.to_string()}</p>
        </div>
    }
}

/// The scroller around a wide table whose cells hold no link or button: keyboard users
/// scroll it by focusing it, so it is a named region in the Tab order. `labelledby` is the
/// id of the heading that names it, else `label` names it.
#[component]
pub fn TableScroll(
    #[prop(optional, into)] label: Option<String>,
    #[prop(optional)] labelledby: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="table-scroll" role="region" tabindex="0" aria-label=label aria-labelledby=labelledby>
            {children()}
        </div>
    }
}

/// The values of `keys` present in the URL query, for a `from_params` parser.
pub fn query_pairs(
    m: &leptos_router::params::ParamsMap,
    keys: &[&'static str],
) -> Vec<(&'static str, String)> {
    keys.iter()
        .filter_map(|k| m.get(k).map(|v| (*k, v)))
        .collect()
}

/// Submits the form a control belongs to, through the router when hydrated (filters that
/// apply as soon as they change). Without JavaScript the form's Apply button does it.
pub fn submit_enclosing_form(ev: leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        if let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("form").ok().flatten())
            .and_then(|f| f.dyn_into::<web_sys::HtmlFormElement>().ok())
        {
            let _ = form.request_submit();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// `1–50 of 2,000 subclouds` for a page showing `shown` rows, or `No subclouds on this
/// page; N match` past the end.
pub fn page_summary(noun: &str, page: u32, per_page: u32, shown: usize, matching: u64) -> String {
    if shown == 0 {
        return format!("No {noun} on this page; {} match", group_digits(matching));
    }
    let first = (u64::from(page) - 1) * u64::from(per_page) + 1;
    let last = first + shown as u64 - 1;
    format!(
        "{}–{} of {} {noun}",
        group_digits(first),
        group_digits(last),
        group_digits(matching)
    )
}

/// First / previous / position / next / last links of a paged list; `link(n)` is page n's URL.
pub fn pager(page: u32, pages: u32, link: impl Fn(u32) -> String) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            {(page > 1).then(|| view! { <a href=link(1) rel="first">"« First"</a> })}
            {(page > 1).then(|| view! { <a href=link(page - 1) rel="prev">"‹ Previous"</a> })}
            <span class="pager-pos">{format!("Page {} of {}", page, group_digits(pages.into()))}</span>
            {(page < pages).then(|| view! { <a href=link(page + 1) rel="next">"Next ›"</a> })}
            {(page < pages).then(|| view! { <a href=link(pages) rel="last">"Last »"</a> })}
        </nav>
    }
}

/// Thousands separators, locale-free (the server and browser must render the same text).
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Percent of `total` as an SVG length (`12.500%`), at most 100 %.
pub fn share(n: u64, total: u64) -> String {
    if total == 0 {
        return "0%".into();
    }
    format!("{:.3}%", n.min(total) as f64 * 100.0 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::group_digits;

    #[test]
    fn digits() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(20000), "20,000");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
