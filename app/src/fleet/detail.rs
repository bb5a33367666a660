//! One subcloud: every field, availability over the last 24 h, its agent, the per-endpoint
//! sync table, its alarms and its steps in recent strategies. Live updates refresh it in place.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::get_subcloud_detail;
use super::timeline::AvailabilitySection;
use crate::components::{
    alarm_status_tone, availability_tone, deploy_tone, management_tone, severity_tone, sync_tone,
    Badge, ErrorPanel, TableScroll, Tone,
};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::orchestration::{get_subcloud_steps, step_tone, strategy_tone};
use crate::ApiError;
use engine::agents::AgentStatus;
use engine::fleet::SubcloudDetail;
use engine::orchestration::SiteStep;

#[component]
pub fn SubcloudPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let live = use_live();
    let refresh = Refresh::<String>::new();
    // A subcloud the server does not know is not asked for again on every live update (each
    // answer would be another 404): its generation is frozen. Another name asks again.
    let missing = RwSignal::new(None::<(String, u64)>);
    let detail = Resource::new(
        move || {
            let n = name();
            let frozen = missing.with(|m| m.as_ref().filter(|(k, _)| *k == n).map(|(_, g)| *g));
            let g = frozen.unwrap_or_else(|| live.generation.get());
            (n, g)
        },
        move |(n, g)| {
            let background = refresh.is_background(&n, g);
            get_subcloud_detail(n, background)
        },
    );
    Effect::new(move |_| {
        if let Some(Err(ApiError::NotFound(_))) = detail.get() {
            missing.set(Some((name(), live.generation.get_untracked())));
        }
    });
    let refresh_steps = Refresh::<String>::new();
    let steps = Resource::new(
        move || (name(), live.generation.get()),
        move |(n, g)| {
            let background = refresh_steps.is_background(&n, g);
            get_subcloud_steps(n, background)
        },
    );
    let last = LastGood::<String, SubcloudDetail>::new();
    let last_steps = LastGood::<String, Vec<SiteStep>>::new();
    view! {
        // leptos_meta writes the title without escaping: only a valid subcloud name (letters,
        // digits, '-', '_') may reach it.
        <Title text=move || {
            let n = name();
            if engine::fleet::SubcloudName::parse(&n).is_ok() { n } else { "Subcloud".to_string() }
        }/>
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <ol>
                <li><a href="/subclouds">"Subclouds"</a></li>
                <li aria-current="page">{name}</li>
            </ol>
        </nav>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // In the same render as the detail: the section never flickers on a refresh.
                let steps = last_steps.settle(name(), steps.await);
                match last.settle(name(), detail.await) {
                    Shown::Fresh(d) => view! { <DetailBody d steps stale=None/> }.into_any(),
                    Shown::Stale(d, e) => view! { <DetailBody d steps stale=Some(e)/> }.into_any(),
                    Shown::Failed(e) => view! { <h1>{name()}</h1><ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DetailBody(
    d: SubcloudDetail,
    steps: Shown<Vec<SiteStep>>,
    stale: Option<crate::ApiError>,
) -> impl IntoView {
    let s = d.summary;
    let fields: Vec<(&'static str, String)> = vec![
        ("Description", d.description),
        ("Location", d.location),
        ("Coordinates", format!("{:.4}, {:.4}", d.lat, d.lon)),
        ("Region", s.region),
        ("Software version", s.software_version),
        ("Group", s.group),
        ("Peer group", s.peer_group.unwrap_or_else(|| "—".into())),
        ("Managing controller", s.controller),
        ("Created", d.created_at.to_iso()),
        ("Updated", d.updated_at.to_iso()),
    ];
    let active = d.alarms.iter().filter(|a| a.cleared_at.is_none()).count();
    let unobserved = d
        .agent
        .as_ref()
        .is_some_and(|a| a.last_report_at.is_some() && a.health == "unknown")
        || s.alarm_status == engine::health::AlarmStatus::Unknown;
    view! {
        <h1>{s.name.clone()}</h1>
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <div class="status-strip" role="group" aria-label="Status">
            <div><span class="label">"Availability"</span><Badge text=s.availability.to_string() tone=availability_tone(s.availability)/></div>
            <div><span class="label">"Management"</span><Badge text=s.management.to_string() tone=management_tone(s.management)/></div>
            <div><span class="label">"Deploy status"</span><Badge text=s.deploy_status.to_string() tone=deploy_tone(s.deploy_status)/></div>
            <div><span class="label">"Sync"</span><Badge text=s.sync_status.to_string() tone=sync_tone(s.sync_status)/></div>
            <div><span class="label">"Alarm status"</span><Badge text=s.alarm_status.to_string() tone=alarm_status_tone(s.alarm_status)/></div>
        </div>
        <AvailabilitySection timeline=d.timeline/>
        <div class="panels">
            <section class="panel" aria-labelledby="props-heading">
                <h2 id="props-heading">"Properties"</h2>
                <dl class="props">
                    {fields
                        .into_iter()
                        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                        .collect_view()}
                </dl>
            </section>
            <AgentSection agent=d.agent/>
            <section class="panel" aria-labelledby="sync-heading">
                <h2 id="sync-heading">"Endpoint sync"</h2>
                <TableScroll labelledby="sync-heading">
                <table class="data endpoints">
                    <thead>
                        <tr><th scope="col">"Endpoint"</th><th scope="col">"Status"</th><th scope="col">"Updated"</th></tr>
                    </thead>
                    <tbody>
                        {d.endpoints
                            .into_iter()
                            .map(|e| view! {
                                <tr data-endpoint=e.endpoint.to_string()>
                                    <th scope="row">{e.endpoint.to_string()}</th>
                                    <td><Badge text=e.status.to_string() tone=sync_tone(e.status)/></td>
                                    <td><time datetime=e.updated_at.to_iso()>{e.updated_at.to_iso()}</time></td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
                </TableScroll>
            </section>
        </div>
        <DeploymentSection steps/>
        <section class="panel" aria-labelledby="alarms-heading">
            <h2 id="alarms-heading">{format!("Alarms ({active} active)")}</h2>
            {unobserved.then(|| view! {
                <p class="notice" data-alarms="unknown">
                    "This site's agent does not observe its platform: its own alarms are unknown, "
                    "and an empty list does not mean it has none."
                </p>
            })}
            {if d.alarms.is_empty() {
                view! { <p class="empty">"No alarms."</p> }.into_any()
            } else {
                view! {
                    <TableScroll labelledby="alarms-heading">
                        <table class="data alarms">
                            <thead>
                                <tr>
                                    <th scope="col">"Severity"</th>
                                    <th scope="col">"Alarm"</th>
                                    <th scope="col">"Reason"</th>
                                    <th scope="col">"Entity"</th>
                                    <th scope="col">"Raised"</th>
                                    <th scope="col">"Cleared"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {d.alarms
                                    .into_iter()
                                    .map(|a| {
                                        let alarm_attr = a.alarm_id.clone();
                                        view! {
                                        <tr class:cleared=a.cleared_at.is_some() data-alarm=alarm_attr>
                                            <td><Badge text=a.severity.to_string() tone=severity_tone(a.severity)/></td>
                                            <td>{a.alarm_id}</td>
                                            <td>{a.reason}</td>
                                            <td class="entity">{a.entity}</td>
                                            <td><time datetime=a.raised_at.to_iso()>{a.raised_at.to_iso()}</time></td>
                                            <td>{a.cleared_at.map(|c| c.to_iso()).unwrap_or_else(|| "active".into())}</td>
                                        </tr>
                                    }})
                                    .collect_view()}
                            </tbody>
                        </table>
                    </TableScroll>
                }.into_any()
            }}
        </section>
    }
}

/// The subcloud's steps in its latest strategies (newest first).
#[component]
fn DeploymentSection(steps: Shown<Vec<SiteStep>>) -> impl IntoView {
    let (rows, problem): (Option<Vec<SiteStep>>, Option<ApiError>) = match steps {
        Shown::Fresh(v) => (Some(v), None),
        Shown::Stale(v, e) => (Some(v), Some(e)),
        Shown::Failed(e) => (None, Some(e)),
    };
    let stale = rows.is_some();
    let problem = problem.map(|e| {
        if stale {
            view! { <StaleNotice error=e/> }.into_any()
        } else {
            view! { <ErrorPanel error=e/> }.into_any()
        }
    });
    let body = rows.map(|rows| {
        if rows.is_empty() {
            return view! { <p class="empty" data-steps="0">"Not part of any recent strategy."</p> }
                .into_any();
        }
        let n = rows.len();
        view! {
            <div class="table-scroll">
                <table class="data site-steps" data-steps=n.to_string()>
                    <caption class="visually-hidden">"This subcloud's steps in recent strategies, newest first"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Strategy"</th>
                            <th scope="col">"Type"</th>
                            <th scope="col">"Arguments"</th>
                            <th scope="col">"Strategy state"</th>
                            <th scope="col">"Step"</th>
                            <th scope="col">"Phase"</th>
                            <th scope="col" class="num">"Done"</th>
                            <th scope="col">"Details"</th>
                            <th scope="col">"Updated (UTC)"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows
                            .into_iter()
                            .map(|s| {
                                let href = format!("/orchestration/{}", s.strategy_id);
                                let phase = if s.step.phase.is_empty() { "—".to_string() } else { s.step.phase.clone() };
                                let args = if s.args.is_empty() { "—".to_string() } else { s.args.clone() };
                                view! {
                                    <tr data-strategy=s.strategy_id.to_string() data-step-state=s.step.state.as_str()>
                                        <th scope="row"><a href=href>{format!("#{}", s.strategy_id)}</a></th>
                                        <td>{s.strategy_type.as_str()}</td>
                                        <td>{args}</td>
                                        <td><Badge text=s.strategy_state.to_string() tone=strategy_tone(s.strategy_state)/></td>
                                        <td><Badge text=s.step.state.to_string() tone=step_tone(s.step.state)/></td>
                                        <td>{phase}</td>
                                        <td class="num">{format!("{} %", s.step.percent)}</td>
                                        <td class="details">{s.step.details.clone()}</td>
                                        <td><time datetime=s.step.updated_at.to_iso()>{s.step.updated_at.to_iso()}</time></td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    });
    view! {
        <section class="panel deployment" aria-labelledby="deployment-heading">
            <h2 id="deployment-heading">"Deployment"</h2>
            {problem}
            {body}
        </section>
    }
}

fn health_tone(health: &str) -> Tone {
    match health {
        "ok" | "healthy" | "online" => Tone::Ok,
        "degraded" | "warning" => Tone::Major,
        "failed" | "critical" | "down" => Tone::Critical,
        // Not measured: never shown as fine.
        "unknown" => Tone::Warning,
        _ => Tone::Neutral,
    }
}

/// The subcloud's agent: enrollment, last report and how well it reaches each controller.
#[component]
fn AgentSection(agent: Option<AgentStatus>) -> impl IntoView {
    let body = match agent {
        None => view! { <p class="empty" data-agent="none">"No agent enrolled."</p> }.into_any(),
        Some(a) => {
            let when = |t: Option<engine::time::Millis>, none: &'static str| match t {
                Some(t) => view! { <time datetime=t.to_iso()>{t.to_iso()}</time> }.into_any(),
                None => view! { <span class="muted">{none}</span> }.into_any(),
            };
            let state = if a.revoked_at.is_some() {
                "revoked"
            } else if a.enrolled_at.is_some() {
                "enrolled"
            } else {
                "awaiting enrollment"
            };
            let version = if a.agent_version.is_empty() {
                "—".to_string()
            } else {
                a.agent_version.clone()
            };
            let health = a.health.clone();
            let reach = if a.reachability.is_empty() {
                view! { <p class="empty">"No reachability reported yet."</p> }.into_any()
            } else {
                view! {
                    <TableScroll label="Reachability">
                        <table class="data reachability">
                            <caption class="visually-hidden">"Reachability of the system controllers"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Controller"</th>
                                    <th scope="col">"Reachable"</th>
                                    <th scope="col" class="num">"RTT (ms)"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {a.reachability
                                    .into_iter()
                                    .map(|r| {
                                        let (text, tone) = if r.reachable { ("yes", Tone::Ok) } else { ("no", Tone::Critical) };
                                        let key = r.controller.clone();
                                        view! {
                                            <tr data-controller=key>
                                                <th scope="row">{r.controller}</th>
                                                <td><Badge text=text tone/></td>
                                                <td class="num">{r.rtt_ms.map(|v| v.to_string()).unwrap_or_else(|| "—".into())}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </TableScroll>
                }
                .into_any()
            };
            view! {
                <dl class="agent-props" data-agent=state>
                    <dt>"State"</dt><dd>{state}</dd>
                    <dt>"Enrolled"</dt><dd>{when(a.enrolled_at, "not yet")}</dd>
                    <dt>"Revoked"</dt><dd>{when(a.revoked_at, "no")}</dd>
                    <dt>"Last report"</dt><dd>{when(a.last_report_at, "never")}</dd>
                    <dt>"Agent version"</dt><dd>{version}</dd>
                    <dt>"Site health"</dt><dd><Badge text=health.clone() tone=health_tone(&health)/></dd>
                    <dt>"Highest epoch"</dt><dd>{a.highest_epoch.to_string()}</dd>
                </dl>
                <h3 class="subheading">"Reachability"</h3>
                {reach}
            }
            .into_any()
        }
    };
    view! {
        <section class="panel agent" aria-labelledby="agent-heading">
            <h2 id="agent-heading">"Agent"</h2>
            {body}
        </section>
    }
}
