//! Geo-redundancy: the system controllers that back each other up, their peer groups, and what
//! happens when one fails. Four pages with the server functions behind them:
//!
//! - `/controllers`: every system peer with its heartbeat, capacity and alarms; pausing
//!   automatic takeover for maintenance; in the demo, stopping and starting controllers.
//! - `/peer-groups` and `/peer-groups/:name`: who owns each group, its sites, its
//!   associations' sync and its ownership history; migrating it (preview, then confirm) and
//!   failing it back home.
//! - `/drill?controller=NAME`: where a controller's groups would go if it failed now, computed
//!   without changing anything.
//!
//! Reading is for every role. Moving groups and pausing takeover need `Permission::Failover`
//! (operators and admins), the demo's controls `Permission::Administer`; the engine checks
//! both (the server's gate already refuses viewer posts). Every form posts without JavaScript
//! and comes back to its page; with JavaScript it updates in place.

mod controllers;
mod drill;
mod group;
mod groups;

pub use controllers::ControllersPage;
pub use drill::DrillPage;
pub use group::PeerGroupPage;
pub use groups::PeerGroupsPage;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::{group_digits, share, Tone};
use crate::ApiError;
use engine::auth::{Permission, Role};
use engine::fleet::{ControllerAvailability, MigrationStatus};
use engine::georedundancy::{
    Association, AssociationSync, FailurePolicy, GeoOverview, MigratePreview, PeerGroupView,
    SystemPeer, TakeoverAnswer, TakeoverPlan,
};
use engine::time::Millis;

// ---------------------------------------------------------------------------------------------
// Server functions
// ---------------------------------------------------------------------------------------------

// `background` (true for a refresh caused only by a live update) is read by the server's gate
// from the URL, not here: such refreshes do not extend the session's idle time.

/// What the controllers, peer-group and drill pages read: the geo-redundancy overview, and
/// whether the server runs the multi-controller demo (whose controllers admins may stop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoView {
    pub overview: GeoOverview,
    pub demo_mode: bool,
}

/// The geo-redundancy overview: peers, peer groups, unprotected sites (any role).
#[server(prefix = "/ui", endpoint = "geo/overview", input = server_fn::codec::GetUrl)]
pub async fn get_geo_overview(#[server(default)] background: bool) -> Result<GeoView, ApiError> {
    let _ = background;
    crate::auth::actor()?;
    let engine = crate::error::engine()?;
    let overview = engine.geo_overview().await?;
    Ok(GeoView {
        overview,
        demo_mode: engine.demo_mode(),
    })
}

/// One peer group's page: the group, and the controllers associated with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerGroupDetail {
    pub group: PeerGroupView,
    /// The associated controllers as peers (capacity, availability), in association order.
    pub controllers: Vec<SystemPeer>,
    pub this_controller: String,
    pub as_of: Millis,
}

/// A peer group with its associations and ownership history (any role).
#[server(prefix = "/ui", endpoint = "geo/peer-group", input = server_fn::codec::GetUrl)]
pub async fn get_peer_group(
    name: String,
    #[server(default)] background: bool,
) -> Result<PeerGroupDetail, ApiError> {
    let _ = background;
    crate::auth::actor()?;
    let engine = crate::error::engine()?;
    let group = engine.peer_group_view(&name).await?;
    let overview = engine.geo_overview().await?;
    let controllers = group
        .associations
        .iter()
        .filter_map(|a| {
            overview
                .peers
                .iter()
                .find(|p| p.name == a.controller)
                .cloned()
        })
        .collect();
    Ok(PeerGroupDetail {
        group,
        controllers,
        this_controller: overview.this_controller,
        as_of: overview.as_of,
    })
}

/// Where `controller`'s peer groups would go if it failed now (any role; changes nothing).
#[server(prefix = "/ui", endpoint = "geo/drill", input = server_fn::codec::GetUrl)]
pub async fn get_takeover_drill(
    controller: String,
    #[server(default)] background: bool,
) -> Result<TakeoverPlan, ApiError> {
    let _ = background;
    crate::auth::actor()?;
    Ok(crate::error::engine()?.takeover_drill(&controller).await?)
}

/// What migrating `group` to `to` would do (any role; changes nothing).
#[server(prefix = "/ui", endpoint = "geo/migrate-preview", input = server_fn::codec::GetUrl)]
pub async fn get_migrate_preview(
    group: String,
    to: String,
    #[server(default)] background: bool,
) -> Result<MigratePreview, ApiError> {
    let _ = background;
    crate::auth::actor()?;
    let req = engine::georedundancy::MigrateRequest {
        peer_group: group,
        to,
    };
    Ok(crate::error::engine()?.migrate_preview(&req).await?)
}

/// Moves a peer group to another associated controller (operators and admins); answers the
/// new owner and epoch. A plain form post (no JavaScript) is redirected to the group's page
/// (`?done=migrate`); a refusal goes back to its preview with the error for the page to show.
#[server(prefix = "/ui", endpoint = "geo/migrate")]
pub async fn migrate_peer_group(group: String, to: String) -> Result<TakeoverAnswer, ApiError> {
    let actor = crate::auth::actor()?;
    let req = engine::georedundancy::MigrateRequest {
        peer_group: group.clone(),
        to: to.clone(),
    };
    let result = match crate::error::engine() {
        Ok(e) => e
            .migrate_peer_group(&actor, &req)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = group_href(&group);
    ssr::come_back(
        <MigratePeerGroup as leptos::server_fn::ServerFn>::PATH,
        &result,
        &format!("{page}?done=migrate"),
        &format!("{page}?to={}", engine::url::encode_query_value(&to)),
    );
    result
}

/// Gives a peer group back to its home controller (operators and admins); answers the new
/// owner and epoch. A plain form post comes back to the group's page (`?done=fail-back`, or
/// with the error).
#[server(prefix = "/ui", endpoint = "geo/fail-back")]
pub async fn fail_back_peer_group(group: String) -> Result<TakeoverAnswer, ApiError> {
    let actor = crate::auth::actor()?;
    let result = match crate::error::engine() {
        Ok(e) => e.fail_back(&actor, &group).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = group_href(&group);
    ssr::come_back(
        <FailBackPeerGroup as leptos::server_fn::ServerFn>::PATH,
        &result,
        &format!("{page}?done=fail-back"),
        &page,
    );
    result
}

/// Pauses (`paused`) or resumes automatic takeover on this controller (operators and admins);
/// answers until when it is paused. A plain form post comes back to the controllers page.
#[server(prefix = "/ui", endpoint = "geo/takeover-paused")]
pub async fn set_takeover_paused(paused: bool) -> Result<Option<Millis>, ApiError> {
    let actor = crate::auth::actor()?;
    let result = match crate::error::engine() {
        Ok(e) => e
            .set_takeover_paused(&actor, paused)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let done = if paused { "pause" } else { "resume" };
    ssr::come_back(
        <SetTakeoverPaused as leptos::server_fn::ServerFn>::PATH,
        &result,
        &format!("/controllers?done={done}"),
        "/controllers",
    );
    result
}

/// A demo controller that was stopped or started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRun {
    pub controller: String,
    pub running: bool,
}

/// Demo only (admins): stops a simulated controller (it stops answering heartbeats, as in a
/// failure) or starts it again. A plain form post comes back to the controllers page.
#[server(prefix = "/ui", endpoint = "geo/demo-controller")]
pub async fn demo_set_controller_running(
    controller: String,
    running: bool,
) -> Result<ControllerRun, ApiError> {
    let actor = crate::auth::actor()?;
    let result = match crate::error::engine() {
        Ok(e) => e
            .demo_set_controller_running(&actor, &controller, running)
            .await
            .map(|()| ControllerRun {
                controller: controller.clone(),
                running,
            })
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let done = if running { "start" } else { "stop" };
    ssr::come_back(
        <DemoSetControllerRunning as leptos::server_fn::ServerFn>::PATH,
        &result,
        &format!("/controllers?done={done}"),
        "/controllers",
    );
    result
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::ApiError;

    /// Sends a plain form post back to a page (paths on this site): `ok` after success,
    /// `back` with the error encoded the way Leptos reads it into the server action's value on
    /// the next render. Calls from JavaScript get the answer as it is.
    pub fn come_back<T>(fn_path: &str, result: &Result<T, ApiError>, ok: &str, back: &str) {
        if !crate::error::plain_form() {
            return;
        }
        match result {
            Ok(_) => leptos_axum::redirect(ok),
            Err(err) => crate::error::redirect_with_error(fn_path, back, err),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Links, permissions and wording
// ---------------------------------------------------------------------------------------------

/// One URL path segment: everything but unreserved characters percent-encoded.
pub fn path_segment(s: &str) -> String {
    engine::url::encode_query_value(s).replace('/', "%2F")
}

/// `/peer-groups/NAME`.
pub fn group_href(name: &str) -> String {
    format!("/peer-groups/{}", path_segment(name))
}

/// `/drill?controller=NAME`.
pub fn drill_href(controller: &str) -> String {
    format!(
        "/drill?controller={}",
        engine::url::encode_query_value(controller)
    )
}

/// A name fit for the page title (leptos_meta writes it unescaped): letters, digits and
/// `-_. ` only, else `fallback`.
pub fn title_text(name: &str, fallback: &str) -> String {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if ok {
        name.to_string()
    } else {
        fallback.to_string()
    }
}

/// Whether a role may move peer groups and pause takeover.
pub fn may_fail_over(role: Option<Role>) -> bool {
    role.is_some_and(|r| r.allows(Permission::Failover))
}

pub fn availability_tone(a: ControllerAvailability) -> Tone {
    match a {
        ControllerAvailability::Available => Tone::Ok,
        ControllerAvailability::Unavailable => Tone::Critical,
        ControllerAvailability::Created => Tone::Neutral,
    }
}

pub fn migration_tone(m: MigrationStatus) -> Tone {
    match m {
        MigrationStatus::None => Tone::Neutral,
        MigrationStatus::Migrating => Tone::Info,
        MigrationStatus::Complete => Tone::Ok,
    }
}

pub fn association_sync_tone(s: AssociationSync) -> Tone {
    match s {
        AssociationSync::InSync => Tone::Ok,
        AssociationSync::Syncing => Tone::Info,
        AssociationSync::OutOfSync => Tone::Major,
        AssociationSync::Failed => Tone::Critical,
        AssociationSync::Unknown => Tone::Neutral,
    }
}

/// An alarm severity (free text in controller alarms) as a tone.
pub fn severity_text_tone(severity: &str) -> Tone {
    match severity
        .trim()
        .to_ascii_lowercase()
        .parse::<engine::health::AlarmSeverity>()
    {
        Ok(s) => crate::components::severity_tone(s),
        Err(_) => Tone::Neutral,
    }
}

/// What a failure policy does, in words.
pub fn policy_text(p: FailurePolicy, delegate_to: Option<&str>) -> String {
    match p {
        FailurePolicy::Alarm => {
            "alarm: raise an alarm; an operator migrates the groups".to_string()
        }
        FailurePolicy::Rehome => {
            "rehome: survivors take the groups over once their agents confirm".to_string()
        }
        FailurePolicy::Delegate => match delegate_to {
            Some(d) if !d.trim().is_empty() => format!("delegate: {d} decides"),
            _ => "delegate: another controller decides".to_string(),
        },
    }
}

/// A length of time, coarse: `12 s`, `4 min`, `3 h 05 min`, `2 d 4 h`.
pub fn span_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m:02} min")
        }
    } else {
        let (d, h) = (s / 86_400, (s % 86_400) / 3600);
        if h == 0 {
            format!("{d} d")
        } else {
            format!("{d} d {h} h")
        }
    }
}

/// `t` relative to `now` (the data's own clock, so the server and the browser agree):
/// `just now`, `12 s ago`, `in 5 min`.
pub fn relative(t: Millis, now: Millis) -> String {
    let d = now.0.saturating_sub(t.0);
    if d.unsigned_abs() < 1000 {
        "just now".to_string()
    } else if d > 0 {
        format!("{} ago", span_text(d))
    } else {
        format!("in {}", span_text(d.saturating_neg()))
    }
}

/// Whole seconds as milliseconds, saturating.
pub fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A time that is set: the store writes 0 for "not known".
pub fn known(t: Millis) -> Option<Millis> {
    (t.0 > 0).then_some(t)
}

/// A heartbeat interval: `1 s`, `2.5 s`, `1 min`, `1 min 30 s`.
pub fn interval_text(ms: u64) -> String {
    if ms >= 60_000 {
        let (m, s) = (ms / 60_000, (ms % 60_000) / 1000);
        if s == 0 {
            format!("{m} min")
        } else {
            format!("{m} min {s} s")
        }
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Seconds of a plan: `3.5 s`, `45 s`, `2 min 05 s`; `—` for nonsense.
pub fn seconds_text(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "—".to_string()
    } else if s < 10.0 && s.fract() != 0.0 {
        format!("{s:.1} s")
    } else if s < 60.0 {
        format!("{s:.0} s")
    } else {
        engine::orchestration::format_duration((s * 1000.0).round() as i64)
    }
}

/// `1 site`, `1,200 sites`.
pub fn sites_text(n: u64) -> String {
    if n == 1 {
        "1 site".to_string()
    } else {
        format!("{} sites", group_digits(n))
    }
}

/// The associations' sync in a few words (`2/2 in sync`, `1/3 in sync · 1 failed`) and the
/// tone of the worst one.
pub fn sync_summary(associations: &[Association]) -> (String, Tone) {
    if associations.is_empty() {
        return ("no associations".to_string(), Tone::Neutral);
    }
    let count = |s: AssociationSync| associations.iter().filter(|a| a.sync_status == s).count();
    let total = associations.len();
    let mut text = format!("{}/{total} in sync", count(AssociationSync::InSync));
    let mut tone = Tone::Ok;
    // Worst first, so the tone is the worst one's.
    for s in [
        AssociationSync::Failed,
        AssociationSync::OutOfSync,
        AssociationSync::Syncing,
        AssociationSync::Unknown,
    ] {
        let n = count(s);
        if n > 0 {
            text.push_str(&format!(" · {n} {s}"));
            if tone == Tone::Ok {
                tone = association_sync_tone(s);
            }
        }
    }
    (text, tone)
}

// ---------------------------------------------------------------------------------------------
// Bars
// ---------------------------------------------------------------------------------------------

/// Subclouds a controller manages against its capacity: managed filled, the reserve shaded at
/// the end, and with `after` (a takeover plan) what it would take on top. The numbers are in
/// the text beside it. SVG geometry, not inline styles: the Content-Security-Policy allows no
/// style attributes.
#[component]
pub fn CapacityBar(
    capacity: u64,
    reserved: u64,
    managed: u64,
    #[prop(optional)] after: Option<u64>,
) -> impl IntoView {
    let scale = capacity.max(managed).max(after.unwrap_or(0)).max(1);
    let usable = capacity.saturating_sub(reserved);
    let now = after.unwrap_or(managed);
    let added = after.map(|a| a.saturating_sub(managed)).unwrap_or(0);
    let state = if now > capacity {
        "over-capacity"
    } else if now > usable {
        "in-reserve"
    } else {
        "ok"
    };
    let text = match after {
        None => format!(
            "{} managed of {} · {} reserved · {} free",
            group_digits(managed),
            group_digits(capacity),
            group_digits(reserved),
            group_digits(usable.saturating_sub(managed)),
        ),
        Some(a) => format!(
            "{} → {} of {} · {} reserved",
            group_digits(managed),
            group_digits(a),
            group_digits(capacity),
            group_digits(reserved),
        ),
    };
    let warning = match state {
        "over-capacity" => Some("over capacity"),
        "in-reserve" => Some("uses the reserve"),
        _ => None,
    };
    view! {
        <div
            class="capacity"
            data-capacity=capacity.to_string()
            data-reserved=reserved.to_string()
            data-managed=managed.to_string()
            data-after=after.map(|a| a.to_string())
            data-state=state
        >
            <svg class="capacity-bar" width="100%" aria-hidden="true" focusable="false">
                <rect class="seg seg-track" x="0" y="0" width=share(capacity, scale) height="100%"></rect>
                <rect class="seg seg-reserve" x=share(usable, scale) y="0" width=share(reserved.min(capacity), scale) height="100%"></rect>
                <rect class="seg seg-managed" x="0" y="0" width=share(managed, scale) height="100%"></rect>
                {(added > 0).then(|| view! {
                    <rect class="seg seg-added" x=share(managed, scale) y="0" width=share(added, scale) height="100%"></rect>
                })}
            </svg>
            <span class="capacity-text">
                {text}
                {warning.map(|w| view! {
                    " "
                    <span class="capacity-warning">
                        <span aria-hidden="true">"▲ "</span>
                        {w}
                    </span>
                })}
            </span>
        </div>
    }
}

/// Rehoming of a peer group's sites after a move: `3 of 10 sites rehomed`.
#[component]
pub fn RehomeBar(
    rehomed: u64,
    total: u64,
    #[prop(optional)] waiting: u64,
    #[prop(optional)] compact: bool,
) -> impl IntoView {
    let done = rehomed.min(total);
    let percent = done.saturating_mul(100).checked_div(total).unwrap_or(0);
    let mut text = format!("{} of {} rehomed", group_digits(done), sites_text(total));
    if waiting > 0 {
        text.push_str(&format!(" · {} waiting", group_digits(waiting)));
    }
    let valuetext = text.clone();
    view! {
        <div
            class=if compact { "progress progress-compact rehome" } else { "progress rehome" }
            role="progressbar"
            aria-label="Rehoming"
            aria-valuemin="0"
            aria-valuemax=total.to_string()
            aria-valuenow=done.to_string()
            aria-valuetext=valuetext
            data-testid="rehome-progress"
            data-rehomed=done.to_string()
            data-total=total.to_string()
        >
            <svg class="progress-bar" width="100%" aria-hidden="true" focusable="false">
                <rect class="seg seg-track" x="0" y="0" width="100%" height="100%"></rect>
                <rect class="seg seg-complete" x="0" y="0" width=share(done, total) height="100%"></rect>
            </svg>
            <span class="progress-text">
                <span class="progress-done">{text}</span>
                <span class="progress-percent">{format!("{percent} %")}</span>
            </span>
        </div>
    }
}

/// A time with its distance from `now`: `2026-11-28T07:26:14Z (3 min ago)`.
#[component]
pub fn When(t: Millis, now: Millis) -> impl IntoView {
    view! {
        <time datetime=t.to_iso() title=t.to_iso()>{relative(t, now)}</time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::georedundancy::AssociationType;

    fn assoc(controller: &str, s: AssociationSync) -> Association {
        Association {
            controller: controller.into(),
            priority: 1,
            association_type: AssociationType::NonPrimary,
            sync_status: s,
            sync_message: String::new(),
            synced_at: None,
        }
    }

    #[test]
    fn times_read_like_words() {
        let now = Millis(1_000_000_000);
        assert_eq!(relative(Millis(now.0 - 400), now), "just now");
        assert_eq!(relative(Millis(now.0 - 12_000), now), "12 s ago");
        assert_eq!(relative(Millis(now.0 - 300_000), now), "5 min ago");
        assert_eq!(relative(Millis(now.0 + 300_000), now), "in 5 min");
        assert_eq!(span_text(3 * 3_600_000 + 5 * 60_000), "3 h 05 min");
        assert_eq!(span_text(2 * 86_400_000), "2 d");
        assert_eq!(span_text(-5), "0 s");
        assert_eq!(
            relative(Millis(i64::MAX), Millis(-1)),
            format!("in {}", span_text(i64::MAX))
        );
        assert_eq!(interval_text(1_000), "1 s");
        assert_eq!(interval_text(2_500), "2.5 s");
        assert_eq!(interval_text(60_000), "1 min");
        assert_eq!(interval_text(90_000), "1 min 30 s");
        assert_eq!(seconds_text(3.5), "3.5 s");
        assert_eq!(seconds_text(45.0), "45 s");
        assert_eq!(seconds_text(125.0), "2 min 05 s");
        assert_eq!(seconds_text(f64::NAN), "—");
        assert_eq!(sites_text(1), "1 site");
        assert_eq!(sites_text(1200), "1,200 sites");
    }

    #[test]
    fn sync_summary_names_the_worst() {
        let all = [
            assoc("a", AssociationSync::InSync),
            assoc("b", AssociationSync::InSync),
        ];
        let (text, tone) = sync_summary(&all);
        assert_eq!(text, "2/2 in sync");
        assert!(tone == Tone::Ok);
        let some = [
            assoc("a", AssociationSync::InSync),
            assoc("b", AssociationSync::Syncing),
            assoc("c", AssociationSync::Failed),
        ];
        let (text, tone) = sync_summary(&some);
        assert_eq!(text, "1/3 in sync · 1 failed · 1 syncing");
        assert!(tone == Tone::Critical);
        assert_eq!(sync_summary(&[]).0, "no associations");
    }

    #[test]
    fn links_and_titles_are_safe() {
        assert_eq!(group_href("west-1"), "/peer-groups/west-1");
        assert_eq!(group_href("a b/c"), "/peer-groups/a%20b%2Fc");
        assert_eq!(drill_href("paris"), "/drill?controller=paris");
        assert_eq!(title_text("west-1", "Peer group"), "west-1");
        assert_eq!(title_text("<script>", "Peer group"), "Peer group");
        assert_eq!(title_text("", "Peer group"), "Peer group");
        assert_eq!(share(1, 8), "12.500%");
        assert_eq!(share(9, 8), "100.000%");
        assert_eq!(share(1, 0), "0%");
    }

    #[test]
    fn severities_and_policies() {
        assert!(severity_text_tone("Critical") == Tone::Critical);
        assert!(severity_text_tone("odd") == Tone::Neutral);
        assert_eq!(
            policy_text(FailurePolicy::Delegate, Some("madrid")),
            "delegate: madrid decides"
        );
    }
}
