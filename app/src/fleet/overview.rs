//! The overview: key figures of the whole fleet, each a link to the subclouds behind it, and
//! the deployments (running strategies, the last finished one, the fleet's software versions).
//! Live updates refresh the figures in place.

use leptos::prelude::*;
use leptos_meta::Title;

use super::get_fleet_overview;
use crate::components::{group_digits, Badge, ErrorPanel, TableScroll, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::orchestration::{
    eta_text, get_deployment_overview, strategy_tone, Progress, ProgressBar,
};
use crate::ApiError;
use engine::fleet::{ControllerAvailability, Overview};
use engine::orchestration::{DeploymentOverview, StrategySummary};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let live = use_live();
    let refresh = Refresh::<()>::new();
    let overview = Resource::new(
        move || live.generation.get(),
        move |g| get_fleet_overview(refresh.is_background(&(), g)),
    );
    let refresh_deployments = Refresh::<()>::new();
    let deployments = Resource::new(
        move || live.generation.get(),
        move |g| get_deployment_overview(refresh_deployments.is_background(&(), g)),
    );
    let last = LastGood::<(), Overview>::new();
    let last_deployments = LastGood::<(), DeploymentOverview>::new();
    view! {
        <Title text="Overview"/>
        <h1>"Fleet overview"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading the fleet…"</p> }>
            {move || Suspend::new(async move {
                // Both in one render: the deployments block never flickers on a refresh.
                let d = last_deployments.settle((), deployments.await);
                match last.settle((), overview.await) {
                    Shown::Fresh(o) => view! { <OverviewBody o d stale=None/> }.into_any(),
                    Shown::Stale(o, e) => view! { <OverviewBody o d stale=Some(e)/> }.into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One key figure linking to the matching subclouds.
#[component]
fn Kpi(
    label: &'static str,
    value: u64,
    href: &'static str,
    tone: Tone,
    #[prop(optional)] of: Option<u64>,
) -> impl IntoView {
    let tone_class = match (tone, value) {
        (_, 0) => "kpi",
        (Tone::Critical, _) => "kpi kpi-critical",
        (Tone::Major, _) => "kpi kpi-major",
        (Tone::Warning, _) => "kpi kpi-warning",
        _ => "kpi",
    };
    let share = of
        .filter(|total| *total > 0)
        .map(|total| format!("{:.1}% of fleet", value as f64 * 100.0 / total as f64));
    view! {
        <a class=tone_class href=href data-kpi=label>
            <span class="kpi-value">{group_digits(value)}</span>
            <span class="kpi-label">{label}</span>
            {share.map(|s| view! { <span class="kpi-share">{s}</span> })}
        </a>
    }
}

#[component]
fn OverviewBody(
    o: Overview,
    d: Shown<DeploymentOverview>,
    stale: Option<crate::ApiError>,
) -> impl IntoView {
    let total = o.total;
    let a = o.active_alarms;
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <section aria-labelledby="kpi-heading">
            <h2 id="kpi-heading" class="visually-hidden">"Key figures"</h2>
            <div class="kpi-grid">
                <Kpi label="Subclouds" value=o.total href="/subclouds" tone=Tone::Neutral/>
                <Kpi label="Online" value=o.online href="/subclouds?availability=online" tone=Tone::Ok of=total/>
                <Kpi label="Offline" value=o.offline href="/subclouds?availability=offline" tone=Tone::Critical of=total/>
                <Kpi label="Critical alarm" value=o.alarm_critical href="/subclouds?alarm=critical" tone=Tone::Critical of=total/>
                <Kpi label="Degraded by alarm" value=o.alarm_degraded href="/subclouds?alarm=degraded" tone=Tone::Major of=total/>
                // Sites whose agents measure nothing of their platform: not counted as healthy.
                <Kpi label="Health unknown" value=o.alarm_unknown href="/subclouds?alarm=unknown" tone=Tone::Warning of=total/>
                <Kpi label="Out of sync" value=o.out_of_sync href="/subclouds?sync=out-of-sync" tone=Tone::Major of=total/>
                <Kpi label="Unmanaged" value=o.unmanaged href="/subclouds?management=unmanaged" tone=Tone::Neutral of=total/>
                <Kpi label="Deploy failed" value=o.deploy_failed href="/subclouds?deploy_class=failed" tone=Tone::Critical/>
                <Kpi label="Deploy in progress" value=o.deploy_in_progress href="/subclouds?deploy_class=in-progress" tone=Tone::Neutral/>
            </div>
        </section>
        <div class="panels">
            <DeploymentsPanel d/>
            <section class="panel" aria-labelledby="alarms-heading">
                <h2 id="alarms-heading">"Active alarms"</h2>
                <ul class="severity-counts">
                    <li data-severity="critical"><Badge text="Critical" tone=Tone::Critical/><span class="count">{group_digits(a.critical.into())}</span></li>
                    <li data-severity="major"><Badge text="Major" tone=Tone::Major/><span class="count">{group_digits(a.major.into())}</span></li>
                    <li data-severity="minor"><Badge text="Minor" tone=Tone::Warning/><span class="count">{group_digits(a.minor.into())}</span></li>
                    <li data-severity="warning"><Badge text="Warning" tone=Tone::Info/><span class="count">{group_digits(a.warnings.into())}</span></li>
                </ul>
            </section>
            <section class="panel" aria-labelledby="controllers-heading">
                <h2 id="controllers-heading">"System controllers"</h2>
                <TableScroll labelledby="controllers-heading">
                    <table class="data">
                        <thead>
                            <tr>
                                <th scope="col">"Controller"</th>
                                <th scope="col">"Region"</th>
                                <th scope="col">"State"</th>
                                <th scope="col" class="num">"Subclouds"</th>
                                <th scope="col" class="num">"Online"</th>
                                <th scope="col" class="num">"Offline"</th>
                                <th scope="col" class="num">"Load"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {o.controllers.into_iter().map(|c| {
                                let tone = match c.availability {
                                    ControllerAvailability::Available => Tone::Ok,
                                    ControllerAvailability::Unavailable => Tone::Critical,
                                    ControllerAvailability::Created => Tone::Neutral,
                                };
                                let load = if c.capacity > 0 {
                                    format!("{:.0}% of {}", c.subclouds as f64 * 100.0 / c.capacity as f64, group_digits(c.capacity))
                                } else {
                                    "—".to_string()
                                };
                                let row_key = c.name.clone();
                                view! {
                                    <tr data-controller=row_key>
                                        <th scope="row">{c.name}</th>
                                        <td>{c.region}</td>
                                        <td><Badge text=c.availability.to_string() tone/></td>
                                        <td class="num">{group_digits(c.subclouds)}</td>
                                        <td class="num">{group_digits(c.online)}</td>
                                        <td class="num">{group_digits(c.offline)}</td>
                                        <td class="num">{load}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </TableScroll>
            </section>
        </div>
        <p class="as-of">"As of " <time datetime=o.as_of.to_iso()>{o.as_of.to_iso()}</time></p>
    }
}

/// Running strategies with their progress and ETA, the last finished one, and the software
/// versions the fleet reports.
#[component]
fn DeploymentsPanel(d: Shown<DeploymentOverview>) -> impl IntoView {
    let (d, stale): (Option<DeploymentOverview>, Option<ApiError>) = match d {
        Shown::Fresh(d) => (Some(d), None),
        Shown::Stale(d, e) => (Some(d), Some(e)),
        Shown::Failed(e) => (None, Some(e)),
    };
    let body = d.map(|d| {
        let active = if d.active.is_empty() {
            view! { <p class="empty" data-active="0">"No strategy is running."</p> }.into_any()
        } else {
            let n = d.active.len();
            view! {
                <ul class="deployment-list" data-active=n.to_string()>
                    {d.active.into_iter().map(|s| view! { <DeploymentItem s/> }).collect_view()}
                </ul>
            }
            .into_any()
        };
        let last = d.last_finished.map(|s| {
            let href = format!("/orchestration/{}", s.id);
            let when = s.finished_at.map(|t| t.to_iso()).unwrap_or_default();
            view! {
                <p class="last-finished" data-strategy=s.id.to_string()>
                    <span class="label">"Last finished: "</span>
                    <a href=href>{format!("#{} {}", s.id, s.strategy_type)}</a>
                    {(!s.args.is_empty()).then(|| format!(" ({})", s.args))}
                    " "
                    <Badge text=s.state.to_string() tone=strategy_tone(s.state)/>
                    " "
                    <time datetime=when.clone()>{when.clone()}</time>
                </p>
            }
        });
        let total: u64 = d.versions.iter().map(|(_, n)| n).sum();
        let versions = d
            .versions
            .into_iter()
            .map(|(v, n)| {
                let share = if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
                let key = v.clone();
                view! {
                    <tr data-version=key>
                        <th scope="row">{v}</th>
                        <td class="num">{group_digits(n)}</td>
                        <td class="share">
                            <svg class="share-bar" width="100%" aria-hidden="true" focusable="false">
                                <rect class="seg seg-track" x="0" y="0" width="100%" height="100%"></rect>
                                <rect class="seg seg-version" x="0" y="0" width=format!("{share:.3}%") height="100%"></rect>
                            </svg>
                        </td>
                        <td class="num">{format!("{share:.1} %")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h3 class="subheading">"Running"</h3>
            {active}
            {last}
            <h3 class="subheading">"Software versions"</h3>
            <TableScroll label="Software versions">
                <table class="data versions">
                    <caption class="visually-hidden">"Software versions the subclouds report"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Version"</th>
                            <th scope="col" class="num">"Subclouds"</th>
                            <th scope="col">"Share"</th>
                            <th scope="col" class="num">"%"</th>
                        </tr>
                    </thead>
                    <tbody>{versions}</tbody>
                </table>
            </TableScroll>
        }
    });
    view! {
        <section class="panel deployments" aria-labelledby="deployments-heading">
            <div class="panel-head">
                <h2 id="deployments-heading">"Deployments"</h2>
                <a href="/orchestration" class="panel-link">"All strategies"</a>
            </div>
            {stale.map(|e| {
                if body.is_some() {
                    view! { <StaleNotice error=e/> }.into_any()
                } else {
                    view! { <ErrorPanel error=e/> }.into_any()
                }
            })}
            {body}
        </section>
    }
}

/// One running strategy: what and where, its state, progress and time left.
#[component]
fn DeploymentItem(s: StrategySummary) -> impl IntoView {
    let href = format!("/orchestration/{}", s.id);
    let eta = eta_text(&s);
    let progress = Progress::of(&s);
    view! {
        <li class="deployment" data-strategy=s.id.to_string() data-state=s.state.as_str()>
            <div class="deployment-head">
                <a href=href class="deployment-name">
                    {format!("#{} {}", s.id, s.strategy_type)}
                    {(!s.args.is_empty()).then(|| format!(" · {}", s.args))}
                </a>
                <Badge text=s.state.to_string() tone=strategy_tone(s.state)/>
            </div>
            <p class="deployment-target muted">{s.target.clone()}</p>
            <ProgressBar progress/>
            {eta.map(|e| view! { <p class="eta">{e}</p> })}
        </li>
    }
}
