//! The failure drill: "what if controller X fails now?". The controller is chosen with a GET
//! form (`/drill?controller=NAME`: works without JavaScript and can be shared); the plan is
//! the engine's, computed with the same placement rules as a real takeover, and changes
//! nothing: where each group goes (or that it waits for capacity), the survivors' capacity
//! before and after, the sites that go dark, and how long it takes. Live updates recompute it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::{
    get_geo_overview, get_takeover_drill, group_href, seconds_text, sites_text, CapacityBar,
    GeoView,
};
use crate::components::{group_digits, submit_enclosing_form, Badge, ErrorPanel, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::georedundancy::{CapacityAfter, FailurePolicy, GroupPlacement, TakeoverPlan};

#[component]
pub fn DrillPage() -> impl IntoView {
    let query = use_query_map();
    let controller = Memo::new(move |_| {
        query
            .with(|q| q.get("controller"))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
    });
    let live = use_live();
    let refresh_overview = Refresh::<()>::new();
    let overview = Resource::new(
        move || live.generation.get(),
        move |g| get_geo_overview(refresh_overview.is_background(&(), g)),
    );
    let refresh = Refresh::<Option<String>>::new();
    let plan = Resource::new(
        move || (controller.get(), live.generation.get()),
        move |(c, g)| {
            let background = refresh.is_background(&c, g);
            async move {
                match c {
                    Some(c) => get_takeover_drill(c, background).await.map(Some),
                    None => Ok(None),
                }
            }
        },
    );
    let last_overview = LastGood::<(), GeoView>::new();
    let last_plan = LastGood::<Option<String>, Option<TakeoverPlan>>::new();
    view! {
        <Title text="Failure drill"/>
        <h1>"What if a controller fails now?"</h1>
        <p class="lead">
            "A drill: choose a controller to see where its peer groups would go if it failed now. The plan uses the same placement rules as a real takeover; nothing is changed."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading the controllers…"</p> }>
            {move || Suspend::new(async move {
                let chosen = controller.get_untracked();
                match last_overview.settle((), overview.await) {
                    Shown::Fresh(v) | Shown::Stale(v, _) => view! { <DrillForm v chosen/> }.into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Computing the plan…"</p> }>
            {move || Suspend::new(async move {
                let c = controller.get_untracked();
                match last_plan.settle(c, plan.await) {
                    Shown::Fresh(Some(p)) => view! { <PlanBody p stale=None/> }.into_any(),
                    Shown::Stale(Some(p), e) => view! { <PlanBody p stale=Some(e)/> }.into_any(),
                    Shown::Fresh(None) | Shown::Stale(None, _) => view! {
                        <p class="empty" data-testid="drill-empty">"Choose a controller to run the drill."</p>
                    }
                    .into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The controller choice: a GET form (in place after hydration, run on change).
#[component]
fn DrillForm(v: GeoView, chosen: Option<String>) -> impl IntoView {
    let chosen = chosen.unwrap_or_default();
    let known = v.overview.peers.iter().any(|p| p.name == chosen);
    let options = v
        .overview
        .peers
        .into_iter()
        .map(|p| {
            let label = if p.is_self {
                format!("{} (this controller, {})", p.name, p.availability)
            } else {
                format!("{} ({})", p.name, p.availability)
            };
            let selected = p.name == chosen;
            view! { <option value=p.name selected=selected prop:selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <Form method="GET" action="/drill" attr:class="filters drill-form" attr:aria-label="Choose the controller that fails">
            <label class="filter" for="drill-controller">
                <span>"Controller that fails"</span>
                <select id="drill-controller" name="controller" on:change=submit_enclosing_form data-testid="drill-controller">
                    <option value="" selected=!known prop:selected=!known>"Choose a controller…"</option>
                    {options}
                </select>
            </label>
            <div class="filter-actions">
                <button type="submit">"Run the drill"</button>
            </div>
        </Form>
    }
}

fn policy_consequence(p: FailurePolicy) -> &'static str {
    match p {
        FailurePolicy::Alarm => {
            "nothing moves by itself: the survivors raise an alarm and wait for an operator to migrate each group (to the destinations below, if they follow the plan)."
        }
        FailurePolicy::Rehome => {
            "the survivors take the groups over by themselves, once the groups' agents confirm they cannot reach the failed controller."
        }
        FailurePolicy::Delegate => {
            "the delegate controller decides and orders the takeover, once the groups' agents confirm they cannot reach the failed controller."
        }
    }
}

#[component]
fn PlanBody(p: TakeoverPlan, stale: Option<ApiError>) -> impl IntoView {
    let failed = p.failed.clone();
    let placed = p.placements.iter().filter(|g| g.to.is_some()).count();
    let waiting = p.placements.len() - placed;
    let sites: u64 = p.placements.iter().map(|g| g.sites).sum();
    let headline = format!(
        "If {failed} failed now: {} {} with {} would move",
        p.placements.len(),
        if p.placements.len() == 1 {
            "peer group"
        } else {
            "peer groups"
        },
        sites_text(sites),
    );
    let expected = if p.policy == FailurePolicy::Alarm {
        format!(
            "{} once an operator migrates (detection alone: {})",
            seconds_text(p.expected_seconds),
            seconds_text(p.detection_seconds)
        )
    } else {
        seconds_text(p.expected_seconds)
    };
    let placements = if p.placements.is_empty() {
        view! {
            <p class="empty">{format!("{failed} owns no peer group: no group moves.")}</p>
        }
        .into_any()
    } else {
        let rows = p
            .placements
            .into_iter()
            .map(|g| view! { <PlacementRow g/> })
            .collect_view();
        view! {
            <div class="table-scroll geo-scroll">
                <table class="data geo-stack placements">
                    <caption class="visually-hidden">{format!("Where the peer groups of {failed} go, in the order they are placed")}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Group"</th>
                            <th scope="col" class="num">"Sites"</th>
                            <th scope="col">"Goes to"</th>
                            <th scope="col">"Why"</th>
                            <th scope="col" class="num">"Agent latency"</th>
                            <th scope="col" class="num">"Rehoming"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let shortfall = (!p.shortfall.is_empty()).then(|| {
        let n = p.shortfall.len();
        view! {
            <section class="panel geo-shortfall" aria-labelledby="shortfall-heading" data-testid="shortfall" data-groups=n.to_string()>
                <h2 id="shortfall-heading">"Capacity shortfall"</h2>
                <p>
                    <Badge text=format!("{n} {} would wait", if n == 1 { "group" } else { "groups" }) tone=Tone::Critical/>
                    " No surviving associated controller has the free capacity for them: their sites stay down until capacity is freed (a reserve lowered, sites moved) or an operator migrates them elsewhere."
                </p>
                <ul class="geo-shortfall-list">
                    {p.shortfall
                        .iter()
                        .map(|g| view! { <li data-group=g.clone()><a href=group_href(g)>{g.clone()}</a></li> })
                        .collect_view()}
                </ul>
            </section>
        }
    });
    let capacity = if p.capacity.is_empty() {
        view! { <p class="empty">"No surviving controller."</p> }.into_any()
    } else {
        let rows = p
            .capacity
            .into_iter()
            .map(|c| view! { <CapacityRow c/> })
            .collect_view();
        view! {
            <div class="table-scroll geo-scroll">
                <table class="data geo-stack drill-capacity">
                    <caption class="visually-hidden">"Load of each surviving controller before and after the takeover"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Controller"</th>
                            <th scope="col">"Load before → after (reserve shaded)"</th>
                            <th scope="col" class="num">"Takes"</th>
                            <th scope="col" class="num">"Free after"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let dark = p.unprotected_sites;
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <p class="notice geo-nothing-changed" role="status" data-testid="nothing-changed">
            <strong>"Nothing was changed."</strong>
            {format!(" This is what would happen if {failed} failed now, computed at ")}
            <time datetime=p.computed_at.to_iso()>{p.computed_at.to_iso()}</time>
            "."
        </p>
        <section
            class="panel geo-plan"
            aria-labelledby="plan-heading"
            data-testid="drill-plan"
            data-failed=failed.clone()
            data-policy=p.policy.as_str()
            data-placed=placed.to_string()
            data-waiting=waiting.to_string()
        >
            <h2 id="plan-heading">"The plan"</h2>
            <p class="preview-summary"><strong>{headline}</strong></p>
            <dl class="props">
                <dt>"Failure policy"</dt>
                <dd data-testid="drill-policy">
                    <strong>{p.policy.as_str()}</strong>
                    {format!(": {}", policy_consequence(p.policy))}
                </dd>
                <dt>"Detection"</dt>
                <dd data-testid="drill-detection">
                    {format!("{} (heartbeat interval × failure threshold)", seconds_text(p.detection_seconds))}
                </dd>
                <dt>"Every group placed after"</dt>
                <dd data-testid="drill-expected">{expected}</dd>
                <dt>"Groups"</dt>
                <dd>
                    {format!("{placed} placed")}
                    {(waiting > 0).then(|| view! {
                        ", "
                        <Badge text=format!("{waiting} waiting for capacity") tone=Tone::Critical/>
                    })}
                </dd>
                <dt>"Sites that go dark"</dt>
                <dd data-testid="unprotected-sites" data-count=dark.to_string()>
                    {if dark > 0 {
                        view! {
                            <Badge text=sites_text(dark) tone=Tone::Critical/>
                            " in no peer group: they stay down with "
                            {failed.clone()}
                            "."
                        }
                        .into_any()
                    } else {
                        view! { "none: every site of " {failed.clone()} " is in a peer group" }.into_any()
                    }}
                </dd>
            </dl>
            <h3 class="subheading">"Where each group goes"</h3>
            {placements}
        </section>
        {shortfall}
        <section class="panel" aria-labelledby="capacity-heading">
            <h2 id="capacity-heading">"Capacity of the survivors"</h2>
            {capacity}
        </section>
    }
}

#[component]
fn PlacementRow(g: GroupPlacement) -> impl IntoView {
    let to_attr = g.to.clone().unwrap_or_default();
    let destination = match &g.to {
        Some(c) => view! { <span class="destination">{c.clone()}</span> }.into_any(),
        None => view! {
            <Badge text="waits: shortfall" tone=Tone::Critical/>
        }
        .into_any(),
    };
    let latency = g
        .agent_latency_ms
        .map(|ms| format!("{} ms", group_digits(ms.into())))
        .unwrap_or_else(|| "—".into());
    let waits = g.to.is_none();
    view! {
        <tr data-testid="plan-row" data-group=g.group.clone() data-to=to_attr class:geo-waits=waits>
            <th scope="row"><a href=group_href(&g.group)>{g.group.clone()}</a></th>
            <td data-label="Sites" class="num">{group_digits(g.sites)}</td>
            <td data-label="Goes to">{destination}</td>
            <td data-label="Why" class="details">{g.reason.clone()}</td>
            <td data-label="Agent latency" class="num">{latency}</td>
            <td data-label="Rehoming" class="num">
                {if waits { "—".to_string() } else { seconds_text(g.rehoming_seconds as f64) }}
            </td>
        </tr>
    }
}

#[component]
fn CapacityRow(c: CapacityAfter) -> impl IntoView {
    let takes = c.managed_after.saturating_sub(c.managed_before);
    let usable = c.capacity.saturating_sub(c.reserved_capacity);
    let free_after = if c.managed_after <= usable {
        group_digits(usable - c.managed_after)
    } else {
        format!("−{}", group_digits(c.managed_after - usable))
    };
    view! {
        <tr data-testid="capacity-row" data-controller=c.controller.clone() data-before=c.managed_before.to_string() data-after=c.managed_after.to_string()>
            <th scope="row">{c.controller.clone()}</th>
            <td data-label="Load before → after" class="geo-load">
                <CapacityBar capacity=c.capacity reserved=c.reserved_capacity managed=c.managed_before after=c.managed_after/>
            </td>
            <td data-label="Takes" class="num">{if takes > 0 { format!("+{}", group_digits(takes)) } else { "0".to_string() }}</td>
            <td data-label="Free after" class="num">{free_after}</td>
        </tr>
    }
}
