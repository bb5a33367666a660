//! Orchestration: rollout strategies over the fleet. The strategy list, the create form with
//! its dry-run preview, one strategy's live page with the operator actions, and the pieces the
//! overview and the subcloud page show; with the server functions behind them.
//!
//! Reading and previewing is for every role; creating and acting need `Permission::Orchestrate`
//! (operators and admins), which the engine checks (the server's gate already refuses viewer
//! posts). Every change is audited by the engine.

mod detail;
mod list;
mod new;

pub use detail::StrategyPage;
pub use list::StrategiesPage;
pub use new::NewStrategyPage;

use std::collections::BTreeMap;

use engine::orchestration::{
    format_duration, DeploymentOverview, SiteStep, SoftwareRelease, StepPage, StepQuery, StepState,
    StrategyDetail, StrategyPreview, StrategyState, StrategySummary, StrategyType, WaveState,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::{group_digits, share, Tone};
use crate::ApiError;

// ---------------------------------------------------------------------------------------------
// Server functions
// ---------------------------------------------------------------------------------------------

// `background` (true for a refresh caused only by a live update) is read by the server's gate
// from the URL, not here: such refreshes do not extend the session's idle time.

/// Strategies, active first, then newest first.
#[server(prefix = "/ui", endpoint = "orchestration/strategies", input = server_fn::codec::GetUrl)]
pub async fn get_strategies(
    page: u32,
    per_page: u32,
    #[server(default)] background: bool,
) -> Result<engine::orchestration::StrategyPage, ApiError> {
    let _ = background;
    let actor = crate::auth::actor()?;
    Ok(crate::error::engine()?
        .strategies(&actor, page, per_page)
        .await?)
}

/// One strategy's page: its detail and one page of its per-site steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyView {
    pub detail: StrategyDetail,
    pub steps: StepPage,
}

/// A strategy with its waves, counts and failures, and a page of its steps.
#[server(prefix = "/ui", endpoint = "orchestration/strategy", input = server_fn::codec::GetUrl)]
pub async fn get_strategy(
    id: i64,
    query: StepQuery,
    #[server(default)] background: bool,
) -> Result<StrategyView, ApiError> {
    let _ = background;
    let actor = crate::auth::actor()?;
    let engine = crate::error::engine()?;
    let detail = engine.strategy_detail(&actor, id).await?;
    let steps = engine.strategy_steps(&actor, id, &query).await?;
    Ok(StrategyView { detail, steps })
}

/// What a dry run answers: the plan, or the first field the request gets wrong. A refusal of
/// the request is an expected outcome of a preview (the form is being filled in), not an error
/// of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PreviewOutcome {
    Ready(StrategyPreview),
    Invalid { field: String, message: String },
}

/// Dry run of the create form's fields (any role): waves, sites, ETA; nothing changes.
#[server(prefix = "/ui", endpoint = "orchestration/preview", input = server_fn::codec::GetUrl)]
pub async fn get_strategy_preview(
    #[server(flatten)] fields: BTreeMap<String, String>,
) -> Result<PreviewOutcome, ApiError> {
    let actor = crate::auth::actor()?;
    let kept = form_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let new = match engine::orchestration::NewStrategy::from_params(
        kept.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(n) => n,
        Err(e) => {
            return Ok(PreviewOutcome::Invalid {
                field: e.field,
                message: e.message,
            })
        }
    };
    match crate::error::engine()?.preview_strategy(&actor, &new).await {
        Ok(p) => Ok(PreviewOutcome::Ready(p)),
        Err(engine::Error::Validation(e)) => Ok(PreviewOutcome::Invalid {
            field: e.field,
            message: e.message,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Releases and Kubernetes versions strategies may roll out.
#[server(prefix = "/ui", endpoint = "orchestration/releases", input = server_fn::codec::GetUrl)]
pub async fn get_software_releases() -> Result<Vec<SoftwareRelease>, ApiError> {
    crate::auth::actor()?;
    Ok(crate::error::engine()?.software_releases().await?)
}

/// The overview's deployment block: active strategies, the last finished one, versions.
#[server(prefix = "/ui", endpoint = "orchestration/deployments", input = server_fn::codec::GetUrl)]
pub async fn get_deployment_overview(
    #[server(default)] background: bool,
) -> Result<DeploymentOverview, ApiError> {
    let _ = background;
    let actor = crate::auth::actor()?;
    Ok(crate::error::engine()?.deployment_overview(&actor).await?)
}

/// One subcloud's steps in its latest strategies.
#[server(prefix = "/ui", endpoint = "orchestration/subcloud-steps", input = server_fn::codec::GetUrl)]
pub async fn get_subcloud_steps(
    name: String,
    #[server(default)] background: bool,
) -> Result<Vec<SiteStep>, ApiError> {
    let _ = background;
    let actor = crate::auth::actor()?;
    Ok(crate::error::engine()?
        .subcloud_steps(&actor, &name)
        .await?)
}

/// Creates a strategy from the create form's fields (operators and admins); answers its id.
/// A plain form post (no JavaScript) is redirected to the new strategy's page; a refusal goes
/// back to the form with the fields filled in and the error for the page to show.
#[server(prefix = "/ui", endpoint = "orchestration/create")]
pub async fn create_strategy(
    #[server(flatten)] fields: BTreeMap<String, String>,
) -> Result<i64, ApiError> {
    let actor = crate::auth::actor()?;
    let kept = form_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let result = match engine::orchestration::NewStrategy::from_params(
        kept.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(new) => crate::error::engine()?
            .create_strategy(&actor, &new)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    let plain = crate::error::plain_form();
    match result {
        Ok(id) => {
            if plain {
                leptos_axum::redirect(&format!("/orchestration/{id}"));
            }
            Ok(id)
        }
        Err(e) => {
            if plain {
                let back = format!("/orchestration/new?{}", form_query(&kept));
                crate::error::redirect_with_error(
                    <CreateStrategy as leptos::server_fn::ServerFn>::PATH,
                    &back,
                    &e,
                );
            }
            Err(e)
        }
    }
}

/// Applies, pauses, resumes, aborts or approves a strategy (operators and admins); answers
/// the new state. `state`, `wave` and `page` are the step table's filter, so that a plain form
/// post (no JavaScript) comes back to the same view; a refusal comes back there with the error.
#[server(prefix = "/ui", endpoint = "orchestration/action")]
pub async fn act_on_strategy(
    id: i64,
    action: String,
    #[server(default)] state: String,
    #[server(default)] wave: String,
    #[server(default)] page: String,
) -> Result<StrategyState, ApiError> {
    let actor = crate::auth::actor()?;
    let back = {
        let q = StepQuery::from_params([
            ("state", state.as_str()),
            ("wave", wave.as_str()),
            ("page", page.as_str()),
        ])
        .unwrap_or_default()
        .to_query_string();
        if q.is_empty() {
            format!("/orchestration/{id}")
        } else {
            format!("/orchestration/{id}?{q}")
        }
    };
    let result = match engine::orchestration::StrategyAction::parse(&action) {
        Ok(a) => crate::error::engine()?
            .strategy_action(&actor, id, a)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    if crate::error::plain_form() {
        match &result {
            Ok(_) => leptos_axum::redirect(&back),
            Err(e) => crate::error::redirect_with_error(
                <ActOnStrategy as leptos::server_fn::ServerFn>::PATH,
                &back,
                e,
            ),
        }
    }
    result
}

// ---------------------------------------------------------------------------------------------
// The create form's fields
// ---------------------------------------------------------------------------------------------

/// The create form's fields, named as `NewStrategy::from_params` reads them, in form order.
pub const FORM_FIELDS: [&str; 23] = [
    "type",
    "release",
    "to_version",
    "expiry_date",
    "subject",
    "for_install",
    "target",
    "target_name",
    "target_query",
    "apply_type",
    "max_parallel",
    "stop_on_failure",
    "offline_policy",
    "step_timeout_secs",
    "canary_size",
    "canary_soak_secs",
    "canary_approval",
    "budget_max",
    "budget_action",
    "retries",
    "retry_backoff_secs",
    "rollback",
    "window",
];

/// Whether a type-specific field applies to strategies of type `t` (`None`: no valid type).
/// The form shows only those, and ignores the others' values, so that switching the type
/// without JavaScript does not trip over a field left filled in.
pub fn field_applies(field: &str, t: Option<StrategyType>) -> bool {
    use StrategyType as T;
    match field {
        "release" => matches!(t, Some(T::SwDeploy | T::Prestage)),
        "to_version" => t == Some(T::Kubernetes),
        "expiry_date" | "subject" => t == Some(T::KubeRootcaUpdate),
        "for_install" => t == Some(T::Prestage),
        "rollback" => t == Some(T::SwDeploy),
        _ => true,
    }
}

/// Whether a field applies to the target kind `target` (`all` when not given). A subcloud group
/// brings its own apply type and max parallel.
fn target_field_applies(field: &str, target: &str) -> bool {
    match field {
        "target_name" => matches!(target, "subcloud" | "group" | "peer_group"),
        "target_query" => target == "filter",
        "apply_type" | "max_parallel" => target != "group",
        _ => true,
    }
}

/// The create form's non-empty fields that apply to the chosen type and target, in form order
/// (the first value of a repeated field); everything else is dropped.
pub fn form_fields<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in pairs {
        if FORM_FIELDS.contains(&k) && !v.trim().is_empty() {
            given.entry(k).or_insert(v);
        }
    }
    let t = given.get("type").and_then(|v| v.trim().parse().ok());
    let target = given.get("target").map_or("all", |v| v.trim());
    FORM_FIELDS
        .iter()
        .filter(|f| field_applies(f, t) && target_field_applies(f, target))
        .filter_map(|f| given.get(f).map(|v| (f.to_string(), v.to_string())))
        .collect()
}

/// `k=v&…` of form fields, percent-encoded.
pub fn form_query(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", engine::url::encode_query_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A field's label, for error messages that name it.
pub fn field_label(field: &str) -> &'static str {
    match field {
        "type" => "Strategy type",
        "release" => "Release",
        "to_version" => "Kubernetes version",
        "expiry_date" => "Root CA expiry date",
        "subject" => "Root CA subject",
        "for_install" => "For a fresh install",
        "target" => "Target",
        "target_name" => "Target name",
        "target_query" => "Subcloud filter",
        "apply_type" => "Apply type",
        "max_parallel" => "Max parallel",
        "stop_on_failure" => "Stop on failure",
        "offline_policy" => "Offline sites",
        "step_timeout_secs" => "Step timeout",
        "canary_size" => "Canary size",
        "canary_soak_secs" => "Canary soak time",
        "canary_approval" => "After the canary",
        "budget_max" => "Failure budget",
        "budget_action" => "When the budget is exceeded",
        "retries" => "Retries",
        "retry_backoff_secs" => "Retry backoff",
        "rollback" => "Roll back failed sites",
        "window" => "Maintenance window",
        _ => "Request",
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// A strategy type in words.
pub fn type_label(t: StrategyType) -> &'static str {
    match t {
        StrategyType::SwDeploy => "Software deploy",
        StrategyType::Kubernetes => "Kubernetes upgrade",
        StrategyType::KubeRootcaUpdate => "Kubernetes root CA update",
        StrategyType::Firmware => "Firmware update",
        StrategyType::Prestage => "Prestage",
    }
}

pub fn strategy_tone(s: StrategyState) -> Tone {
    match s {
        StrategyState::Initial => Tone::Neutral,
        StrategyState::Applying => Tone::Info,
        StrategyState::Paused | StrategyState::WaitingApproval => Tone::Warning,
        StrategyState::AbortRequested | StrategyState::Aborting | StrategyState::Aborted => {
            Tone::Major
        }
        StrategyState::Complete => Tone::Ok,
        StrategyState::Failed => Tone::Critical,
    }
}

pub fn step_tone(s: StepState) -> Tone {
    match s {
        StepState::Initial | StepState::Skipped | StepState::Aborted => Tone::Neutral,
        StepState::Queued | StepState::Running => Tone::Info,
        StepState::RollingBack | StepState::RolledBack => Tone::Major,
        StepState::Complete => Tone::Ok,
        StepState::Failed | StepState::RollbackFailed => Tone::Critical,
    }
}

pub fn wave_tone(s: WaveState) -> Tone {
    match s {
        WaveState::Pending => Tone::Neutral,
        WaveState::Running | WaveState::Soaking => Tone::Info,
        WaveState::WaitingApproval => Tone::Warning,
        WaveState::Complete => Tone::Ok,
        WaveState::Stopped => Tone::Major,
    }
}

/// The time a strategy needs or needed: what is left of a running one, the estimate of one
/// not applied yet, how long a finished one took.
pub fn eta_text(s: &StrategySummary) -> Option<String> {
    if s.state.is_terminal() {
        return match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => Some(format!("took {}", format_duration(b.0 - a.0))),
            _ => None,
        };
    }
    let ms = s.eta_ms?;
    Some(if s.state == StrategyState::Initial {
        format!("about {} once applied", format_duration(ms))
    } else {
        format!("about {} left", format_duration(ms))
    })
}

/// Step counts for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: u64,
    pub complete: u64,
    pub failed: u64,
    pub skipped: u64,
    pub aborted: u64,
    pub in_flight: u64,
}

impl Progress {
    pub fn of(s: &StrategySummary) -> Self {
        Self {
            total: s.total,
            complete: s.complete,
            failed: s.failed,
            skipped: s.skipped,
            aborted: s.aborted,
            in_flight: s.in_flight,
        }
    }

    pub fn of_counts(c: &engine::orchestration::StepCounts) -> Self {
        Self {
            total: c.total(),
            complete: c.get(StepState::Complete),
            failed: c.failures(),
            skipped: c.get(StepState::Skipped),
            aborted: c.get(StepState::Aborted),
            in_flight: c.in_flight(),
        }
    }

    pub fn done(self) -> u64 {
        self.complete + self.failed + self.skipped + self.aborted
    }

    /// Whole percent done (rounded down, so 100 means every step is done).
    pub fn percent(self) -> u64 {
        (self.done() * 100).checked_div(self.total).unwrap_or(0)
    }

    /// `12 of 40 done`, then what is not plain success.
    pub fn text(self) -> String {
        let mut s = format!(
            "{} of {} done",
            group_digits(self.done()),
            group_digits(self.total)
        );
        let extra: Vec<String> = [
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.aborted, "aborted"),
            (self.in_flight, "in progress"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", group_digits(n)))
        .collect();
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        s
    }
}

/// A progress bar: complete, failed, skipped and aborted steps in proportion (in flight as a
/// lighter segment), with its text ("12 of 40 done · 30 %"). SVG geometry, not inline styles:
/// the Content-Security-Policy allows no style attributes.
#[component]
pub fn ProgressBar(progress: Progress, #[prop(optional)] compact: bool) -> impl IntoView {
    let p = progress;
    let mut x = 0u64;
    let segs = [
        ("complete", p.complete),
        ("failed", p.failed),
        ("skipped", p.skipped),
        ("aborted", p.aborted),
        ("running", p.in_flight),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(class, n)| {
        let left = share(x, p.total);
        x += n;
        view! {
            <rect class=format!("seg seg-{class}") x=left width=share(n, p.total) y="0" height="100%"></rect>
        }
    })
    .collect_view();
    let text = p.text();
    let valuetext = text.clone();
    let percent = p.percent();
    view! {
        <div
            class=if compact { "progress progress-compact" } else { "progress" }
            role="progressbar"
            aria-label="Progress"
            aria-valuemin="0"
            aria-valuemax=p.total.to_string()
            aria-valuenow=p.done().to_string()
            aria-valuetext=valuetext
            data-done=p.done().to_string()
            data-total=p.total.to_string()
            data-percent=percent.to_string()
        >
            <svg class="progress-bar" width="100%" aria-hidden="true" focusable="false">
                <rect class="seg seg-track" x="0" y="0" width="100%" height="100%"></rect>
                {segs}
            </svg>
            <span class="progress-text">
                <span class="progress-done">{text}</span>
                <span class="progress-percent">{format!("{percent} %")}</span>
            </span>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        form_fields(v.iter().copied())
    }

    #[test]
    fn form_fields_keep_what_applies_in_form_order() {
        let kept = pairs(&[
            ("target", "filter"),
            ("type", "kubernetes"),
            ("release", "26.03"),
            ("to_version", "v1.31"),
            ("target_query", "availability=online&group=Edge EU"),
            ("target_name", "lyon-0001"),
            ("max_parallel", ""),
            ("__err", "x"),
            ("type", "firmware"),
        ]);
        assert_eq!(
            kept,
            vec![
                ("type".to_string(), "kubernetes".to_string()),
                ("to_version".into(), "v1.31".into()),
                ("target".into(), "filter".into()),
                (
                    "target_query".into(),
                    "availability=online&group=Edge EU".into()
                ),
            ]
        );
        assert_eq!(
            form_query(&kept),
            "type=kubernetes&to_version=v1.31&target=filter\
             &target_query=availability%3Donline%26group%3DEdge%20EU"
        );
        // A name target keeps its name (a group brings its own parallelism); an unknown type
        // keeps no type-specific field.
        let kept = pairs(&[
            ("type", "nope"),
            ("release", "1"),
            ("target", "group"),
            ("target_name", "g"),
            ("max_parallel", "3"),
        ]);
        assert_eq!(
            kept,
            vec![
                ("type".to_string(), "nope".to_string()),
                ("target".into(), "group".into()),
                ("target_name".into(), "g".into()),
            ]
        );
    }

    #[test]
    fn progress_text_and_percent() {
        let p = Progress {
            total: 40,
            complete: 10,
            failed: 2,
            skipped: 0,
            aborted: 0,
            in_flight: 3,
        };
        assert_eq!(p.done(), 12);
        assert_eq!(p.percent(), 30);
        assert_eq!(p.text(), "12 of 40 done (2 failed, 3 in progress)");
        assert_eq!(Progress::default().percent(), 0);
        assert_eq!(Progress::default().text(), "0 of 0 done");
        assert_eq!(share(1, 8), "12.500%");
    }
}
