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
