//! The controllers page: every system peer (this controller included) with its availability,
//! heartbeat, settings, load against capacity and reserve, maintenance and alarms, and the
//! sites no peer group protects. Operators pause automatic takeover for maintenance; in the
//! demo, admins stop and start controllers to simulate a failure. The table stacks into one
//! card per controller on a phone. Live updates refresh it in place.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{
    availability_tone, drill_href, get_geo_overview, interval_text, may_fail_over, policy_text,
    secs_to_ms, severity_text_tone, span_text, CapacityBar, ControllerRun,
    DemoSetControllerRunning, GeoView, SetTakeoverPaused, When,
};
use crate::auth::{get_current_user, FormStatus};
use crate::components::{group_digits, Badge, ErrorPanel, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::auth::{Permission, Role};
use engine::fleet::ControllerAvailability;
use engine::georedundancy::{AdminState, FailurePolicy, SystemPeer};
use engine::time::Millis;

/// The message after a plain form post (no JavaScript) came back (`?done=`).
fn done_text(done: &str) -> Option<&'static str> {
    match done {
        "pause" => Some("Automatic takeover is paused."),
        "resume" => Some("Automatic takeover runs again."),
        "stop" => Some("Controller stopped: it no longer answers heartbeats, as in a failure."),
        "start" => Some("Controller started: it answers heartbeats again."),
        _ => None,
    }
}

fn paused_text(until: Option<Millis>) -> String {
    match until {
        Some(t) => format!("Automatic takeover is paused until {}.", t.to_iso()),
        None => "Automatic takeover runs again.".to_string(),
    }
}

fn run_text(r: &ControllerRun) -> String {
    if r.running {
        format!("Started {}: it answers heartbeats again.", r.controller)
    } else {
        format!(
            "Stopped {}: it no longer answers heartbeats; its peers notice after their failure threshold.",
            r.controller
        )
    }
}

#[component]
pub fn ControllersPage() -> impl IntoView {
    let params = use_query_map();
    let pause = ServerAction::<SetTakeoverPaused>::new();
    let demo = ServerAction::<DemoSetControllerRunning>::new();
    let live = use_live();
    let refresh = Refresh::<(usize, usize)>::new();
    let data = Resource::new(
        move || {
            (
                pause.version().get(),
                demo.version().get(),
                live.generation.get(),
            )
        },
        move |(p, d, g)| get_geo_overview(refresh.is_background(&(p, d), g)),
    );
    let me = Resource::new(|| (), |_| get_current_user());
    let last = LastGood::<(), GeoView>::new();
    // One status line for both kinds of form: the latest outcome is the one shown.
    Effect::watch(
        move || pause.version().get(),
        move |_, _, _| demo.value().set(None),
        false,
    );
    Effect::watch(
        move || demo.version().get(),
        move |_, _, _| pause.value().set(None),
        false,
    );
    let message = Signal::derive(move || match (pause.value().get(), demo.value().get()) {
        (Some(Ok(until)), _) => Some((true, paused_text(until))),
        (Some(Err(e)), _) | (None, Some(Err(e))) => Some((false, e.to_string())),
        (None, Some(Ok(r))) => Some((true, run_text(&r))),
        // Back from a plain form post (no JavaScript).
        (None, None) => params
            .with(|m| m.get("done"))
            .and_then(|d| done_text(&d))
            .map(|t| (true, t.to_string())),
    });
    view! {
        <Title text="Controllers"/>
        <h1>"System controllers"</h1>
        <p class="lead">
            "The controllers that back each other up. Each owns peer groups of subclouds; when one fails, its peers take its groups over as their failure policy says."
        </p>
        <FormStatus message/>
        <Transition fallback=|| view! { <p class="loading">"Loading the controllers…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|u| u.role);
                let can_pause = may_fail_over(role);
                let can_demo = role.is_some_and(|r: Role| r.allows(Permission::Administer));
                match last.settle((), data.await) {
                    Shown::Fresh(v) => view! { <ControllersBody v can_pause can_demo pause demo stale=None/> }.into_any(),
                    Shown::Stale(v, e) => view! { <ControllersBody v can_pause can_demo pause demo stale=Some(e)/> }.into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ControllersBody(
    v: GeoView,
    can_pause: bool,
    can_demo: bool,
    pause: ServerAction<SetTakeoverPaused>,
    demo: ServerAction<DemoSetControllerRunning>,
    stale: Option<ApiError>,
) -> impl IntoView {
    let GeoView {
        overview: o,
        demo_mode,
    } = v;
    let now = o.as_of;
    let paused_until = o.maintenance_until.filter(|t| *t > now);
    let available = o
        .peers
        .iter()
        .filter(|p| p.availability == ControllerAvailability::Available)
        .count();
    let total_peers = o.peers.len();
    let unprotected_total: u64 = o.unprotected.iter().map(|(_, n)| n).sum();
    let demo_controls = can_demo && demo_mode;
    let unprotected = o.unprotected.clone();
    let rows = o
        .peers
        .into_iter()
        .map(|p| {
            let lost = unprotected
                .iter()
                .find(|(c, _)| *c == p.name)
                .map_or(0, |(_, n)| *n);
            view! { <PeerRow p now unprotected=lost demo_controls demo/> }
        })
        .collect_view();
    let caption = format!(
        "{total_peers} system {}, {available} available",
        if total_peers == 1 {
            "controller"
        } else {
            "controllers"
        }
    );
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        {(!o.enabled).then(|| view! {
            <p class="notice" data-testid="geo-disabled">
                {format!(
                    "No peers are configured: {} manages every subcloud by itself, and no peer group protects them.",
                    o.this_controller
                )}
            </p>
        })}
        <div class="status-strip geo-strip">
            <div data-testid="controllers-available">
                <span class="label">"Available"</span>
                <span class="strip-value">{format!("{available} of {total_peers}")}</span>
            </div>
            <div>
                <span class="label">"Peer groups"</span>
                <span class="strip-value"><a href="/peer-groups">{group_digits(o.groups.len() as u64)}</a></span>
            </div>
            <div data-testid="unprotected-total" data-unprotected=unprotected_total.to_string()>
                <span class="label">"Unprotected sites"</span>
                <span class="strip-value">
                    {if unprotected_total > 0 {
                        view! { <Badge text=group_digits(unprotected_total) tone=Tone::Major/> }.into_any()
                    } else {
                        view! { "0" }.into_any()
                    }}
                </span>
            </div>
            <div>
                <span class="label">"Automatic takeover"</span>
                <span class="strip-value">
                    {match paused_until {
                        Some(_) => view! { <Badge text="paused" tone=Tone::Warning/> }.into_any(),
                        None => view! { <Badge text="active" tone=Tone::Neutral/> }.into_any(),
                    }}
                </span>
            </div>
        </div>
        <section
            class="panel geo-maintenance"
            aria-labelledby="maintenance-heading"
            data-testid="maintenance"
            data-paused=paused_until.is_some().to_string()
        >
            <h2 id="maintenance-heading">"Maintenance"</h2>
            <p>
                {match paused_until {
                    Some(t) => view! {
                        "Automatic takeover is paused on this controller ("
                        <strong>{o.this_controller.clone()}</strong>
                        ") until "
                        <time datetime=t.to_iso()>{t.to_iso()}</time>
                        {format!(" ({})", super::relative(t, now))}
                        ". Groups move only when an operator migrates them."
                    }
                    .into_any(),
                    None => view! {
                        "Automatic takeover runs on this controller ("
                        <strong>{o.this_controller.clone()}</strong>
                        "). Pause it while you work on a controller: its peers are told in every heartbeat, and groups then move only when an operator migrates them. The pause ends by itself after the maintenance timeout."
                    }
                    .into_any(),
                }}
            </p>
            {can_pause.then(|| {
                let paused = paused_until.is_some();
                view! {
                    <ActionForm action=pause attr:class="inline-form geo-maintenance-form" attr:aria-label="Automatic takeover">
                        <input type="hidden" name="paused" value=(!paused).to_string()/>
                        {if paused {
                            view! {
                                <button type="submit" class="button-secondary" data-testid="resume-takeover">
                                    "Resume automatic takeover"
                                </button>
                            }
                            .into_any()
                        } else {
                            view! {
                                <button type="submit" class="button-secondary" data-testid="pause-takeover">
                                    "Pause automatic takeover (maintenance)"
                                </button>
                            }
                            .into_any()
                        }}
                    </ActionForm>
                }
            })}
        </section>
        <section class="panel" aria-labelledby="peers-heading">
            <h2 id="peers-heading">"Controllers"</h2>
            {demo_controls.then(|| view! {
                <p class="notice geo-demo-note" data-testid="demo-note">
                    "Demo: stopping a controller simulates its failure (it stops answering heartbeats and managing its sites). Start it again to see the groups fail back."
                </p>
            })}
            <div class="table-scroll geo-scroll">
                <table class="data geo-stack peers">
                    <caption class="visually-hidden">{caption}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Controller"</th>
                            <th scope="col">"Location"</th>
                            <th scope="col">"Availability"</th>
                            <th scope="col">"Heartbeat"</th>
                            <th scope="col">"Settings"</th>
                            <th scope="col">"Load"</th>
                            <th scope="col">"Alarms"</th>
                            <th scope="col" class="num">"Unprotected sites"</th>
                            {demo_controls.then(|| view! { <th scope="col">"Demo"</th> })}
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
        <p class="as-of">"As of " <time datetime=now.to_iso()>{now.to_iso()}</time></p>
    }
}

#[component]
fn PeerRow(
    p: SystemPeer,
    now: Millis,
    unprotected: u64,
    demo_controls: bool,
    demo: ServerAction<DemoSetControllerRunning>,
) -> impl IntoView {
    let hb = p.heartbeat.clone();
    let location = match (p.city.trim(), p.region.trim()) {
        ("", "") => "—".to_string(),
        (c, "") => c.to_string(),
        ("", r) => r.to_string(),
        (c, r) => format!("{c}, {r}"),
    };
    let heartbeat = if p.is_self {
        view! { <span class="muted">"this controller"</span> }.into_any()
    } else {
        let seen = match p.last_seen {
            Some(t) => view! { "last seen " <When t now/> }.into_any(),
            None => view! { <span class="muted">"never seen"</span> }.into_any(),
        };
        let latency = p
            .latency_ms
            .map(|ms| format!(" · {} ms", group_digits(ms.into())));
        let missed = (p.missed > 0).then(|| {
            let tone = if p.missed >= hb.failure_threshold {
                Tone::Critical
            } else {
                Tone::Warning
            };
            view! {
                <br/>
                <Badge text=format!("{} missed", p.missed) tone/>
            }
        });
        view! {
            <span class="heartbeat" data-missed=p.missed.to_string()>
                {seen}
                {latency}
                {missed}
            </span>
        }
        .into_any()
    };
    let delegate = (hb.failure_policy == FailurePolicy::Delegate)
        .then(|| hb.delegate_to.clone())
        .flatten();
    // The settings this controller applies to a peer: none for itself.
    let settings = if p.is_self {
        view! { <span class="muted">"set by each peer"</span> }.into_any()
    } else {
        let every = format!(
            "every {} · unavailable after {} missed ({})",
            interval_text(hb.interval_ms),
            hb.failure_threshold,
            interval_text(hb.failure_after_ms()),
        );
        let policy = policy_text(hb.failure_policy, delegate.as_deref());
        let timeout = span_text(secs_to_ms(hb.maintenance_timeout_s));
        view! {
            {every}
            <br/>
            <span class="policy" data-policy=hb.failure_policy.as_str()>{format!("policy {policy}")}</span>
            <br/>
            <span class="muted">{format!("maintenance timeout {timeout}")}</span>
        }
        .into_any()
    };
    let maintenance = p.maintenance_until.filter(|t| *t > now).map(|t| {
        view! {
            <br/>
            <span class="geo-paused" data-testid="peer-maintenance">
                <Badge text="takeover paused" tone=Tone::Warning/>
                " until "
                <When t now/>
            </span>
        }
    });
    let active: Vec<_> = p
        .active_alarms
        .iter()
        .filter(|a| a.cleared_at.is_none())
        .cloned()
        .collect();
    let alarm_count = active.len();
    let alarms = if active.is_empty() {
        view! { <span class="muted">"none"</span> }.into_any()
    } else {
        view! {
            <ul class="geo-alarms">
                {active
                    .into_iter()
                    .map(|a| {
                        let tone = severity_text_tone(&a.severity);
                        view! {
                            <li data-alarm-id=a.alarm_id.clone()>
                                <Badge text=a.severity.clone() tone/>
                                " "
                                <span class="alarm-id">{a.alarm_id.clone()}</span>
                                " "
                                <span class="reason">{a.reason.clone()}</span>
                                " ("
                                <When t=a.raised_at now/>
                                ")"
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    let name = p.name.clone();
    let drill = drill_href(&p.name);
    let since = p.availability_changed_at;
    let disabled = p.administrative_state == AdminState::Disabled;
    let demo_cell = demo_controls.then(|| {
        let stop_name = p.name.clone();
        let form_label = format!("Demo controls of {}", p.name);
        let (field, stop_hint, start_hint) = (
            p.name.clone(),
            format!(" {}", p.name),
            format!(" {}", p.name),
        );
        view! {
            <td data-label="Demo" class="geo-demo">
                <ActionForm action=demo attr:class="geo-demo-form" attr:aria-label=form_label>
                    <input type="hidden" name="controller" value=field/>
                    <button
                        type="submit"
                        name="running"
                        value="false"
                        class="button-danger"
                        data-testid="demo-stop"
                        on:click=move |ev| {
                            if !confirm_stop(&stop_name) {
                                ev.prevent_default();
                            }
                        }
                    >
                        "Stop"
                        <span class="visually-hidden">{stop_hint}</span>
                    </button>
                    <button type="submit" name="running" value="true" class="button-secondary" data-testid="demo-start">
                        "Start"
                        <span class="visually-hidden">{start_hint}</span>
                    </button>
                </ActionForm>
            </td>
        }
    });
    view! {
        <tr
            data-testid="peer-row"
            data-peer=p.name.clone()
            data-availability=p.availability.as_str()
            data-self=p.is_self.to_string()
            data-alarms=alarm_count.to_string()
        >
            <th scope="row">
                <span class="peer-name">{name}</span>
                {p.is_self.then(|| view! { " " <Badge text="this controller" tone=Tone::Info/> })}
                {disabled.then(|| view! { " " <Badge text="disabled" tone=Tone::Neutral/> })}
                <br/>
                <a class="drill-link" href=drill>
                    "What if it fails?"
                    <span class="visually-hidden">{format!(" ({})", p.name)}</span>
                </a>
            </th>
            <td data-label="Location">{location}</td>
            <td data-label="Availability">
                <Badge text=p.availability.to_string() tone=availability_tone(p.availability)/>
                {since.map(|t| view! { <span class="since">" since " <When t now/></span> })}
                {maintenance}
            </td>
            <td data-label="Heartbeat">{heartbeat}</td>
            <td data-label="Settings" class="geo-settings">{settings}</td>
            <td data-label="Load" class="geo-load">
                <CapacityBar capacity=p.capacity reserved=p.reserved_capacity managed=p.managed/>
            </td>
            <td data-label="Alarms" class="geo-alarm-cell">{alarms}</td>
            <td data-label="Unprotected sites" class="num" data-unprotected=unprotected.to_string()>
                {if unprotected > 0 {
                    view! { <Badge text=group_digits(unprotected) tone=Tone::Major/> }.into_any()
                } else {
                    view! { <span class="muted">"0"</span> }.into_any()
                }}
            </td>
            {demo_cell}
        </tr>
    }
}

/// Asks before stopping a controller (browser only; without JavaScript the button posts at once).
fn confirm_stop(name: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        window()
            .confirm_with_message(&format!(
                "Stop {name}? It stops answering heartbeats, like a failed controller, until you start it again."
            ))
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = name;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(done_text("pause"), Some("Automatic takeover is paused."));
        assert_eq!(done_text("<b>"), None);
        assert_eq!(paused_text(None), "Automatic takeover runs again.");
        assert!(run_text(&ControllerRun {
            controller: "madrid".into(),
            running: false
        })
        .starts_with("Stopped madrid"));
    }
}
