//! The peer group list: who owns each group (and whether it is away from home), its epoch,
//! migration with rehoming progress, its sites' health and its associations' sync. Stacks into
//! one card per group on a phone; live updates refresh it in place.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{get_geo_overview, group_href, migration_tone, sync_summary, GeoView, RehomeBar};
use crate::components::{group_digits, Badge, ErrorPanel, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::fleet::MigrationStatus;
use engine::georedundancy::PeerGroupView;

#[component]
pub fn PeerGroupsPage() -> impl IntoView {
    let live = use_live();
    let refresh = Refresh::<()>::new();
    let data = Resource::new(
        move || live.generation.get(),
        move |g| get_geo_overview(refresh.is_background(&(), g)),
    );
    let last = LastGood::<(), GeoView>::new();
    view! {
        <Title text="Peer groups"/>
        <h1>"Peer groups"</h1>
        <p class="lead">
            "Subclouds in a peer group are protected: when their owner fails, another associated controller takes the whole group over."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading peer groups…"</p> }>
            {move || Suspend::new(async move {
                match last.settle((), data.await) {
                    Shown::Fresh(v) => view! { <GroupTable v stale=None/> }.into_any(),
                    Shown::Stale(v, e) => view! { <GroupTable v stale=Some(e)/> }.into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn GroupTable(v: GeoView, stale: Option<ApiError>) -> impl IntoView {
    let o = v.overview;
    let now = o.as_of;
    let n = o.groups.len();
    let away = o.groups.iter().filter(|g| g.owner != g.home).count();
    let migrating = o
        .groups
        .iter()
        .filter(|g| g.migration_status == MigrationStatus::Migrating)
        .count();
    let mut summary = format!(
        "{} peer {}",
        group_digits(n as u64),
        if n == 1 { "group" } else { "groups" }
    );
    if away > 0 {
        summary.push_str(&format!(", {away} away from home"));
    }
    if migrating > 0 {
        summary.push_str(&format!(", {migrating} migrating"));
    }
    let unprotected: u64 = o.unprotected.iter().map(|(_, n)| n).sum();
    let rows = o
        .groups
        .into_iter()
        .map(|g| view! { <GroupRow g/> })
        .collect_view();
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        {if n == 0 {
            view! {
                <p class="empty">"No peer groups: no subcloud is protected by geo-redundancy."</p>
            }
            .into_any()
        } else {
            view! {
                <p class="result-count" role="status" data-matching=n.to_string()>{summary.clone()}</p>
                <div class="table-scroll geo-scroll">
                    <table class="data geo-stack peer-groups">
                        <caption class="visually-hidden">{summary}</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Group"</th>
                                <th scope="col">"Owner"</th>
                                <th scope="col" class="num">"Epoch"</th>
                                <th scope="col">"Migration"</th>
                                <th scope="col">"Sites"</th>
                                <th scope="col">"Associations"</th>
                                <th scope="col" class="num">"Priority"</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }
            .into_any()
        }}
        {(unprotected > 0).then(|| view! {
            <p class="notice geo-unprotected" data-testid="unprotected-total" data-unprotected=unprotected.to_string()>
                {format!(
                    "{} in no peer group: they go down with their controller. ",
                    super::sites_text(unprotected)
                )}
                <a href="/controllers">"See them by controller"</a>
            </p>
        })}
        <p class="as-of">"As of " <time datetime=now.to_iso()>{now.to_iso()}</time></p>
    }
}

/// Online, offline and critical counts of a group's sites, abnormal ones marked.
pub(super) fn site_counts(g: &PeerGroupView) -> impl IntoView {
    let s = &g.sites;
    let part = |n: u64, what: &'static str, tone: Tone| {
        let abnormal = n > 0 && tone != Tone::Ok;
        view! {
            <li data-sites=what data-count=n.to_string()>
                {if abnormal {
                    view! { <Badge text=format!("{} {what}", group_digits(n)) tone/> }.into_any()
                } else {
                    view! { <span>{format!("{} {what}", group_digits(n))}</span> }.into_any()
                }}
            </li>
        }
    };
    view! {
        <ul class="geo-site-counts" aria-label="Sites by health">
            {part(s.online, "online", Tone::Ok)}
            {part(s.offline, "offline", Tone::Critical)}
            {part(s.critical, "critical", Tone::Critical)}
            {(s.degraded > 0).then(|| part(s.degraded, "degraded", Tone::Major))}
            {(s.health_unknown > 0).then(|| part(s.health_unknown, "health unknown", Tone::Warning))}
        </ul>
    }
}

#[component]
fn GroupRow(g: PeerGroupView) -> impl IntoView {
    let href = group_href(&g.name);
    let away = g.owner != g.home;
    let (sync, sync_tone) = sync_summary(&g.associations);
    let sync_attr = sync.clone();
    let migrating = g.migration_status == MigrationStatus::Migrating;
    let counts = site_counts(&g);
    view! {
        <tr
            data-testid="group-row"
            data-group=g.name.clone()
            data-owner=g.owner.clone()
            data-home=g.home.clone()
            data-epoch=g.owner_epoch.to_string()
            data-migration=g.migration_status.as_str()
        >
            <th scope="row"><a href=href>{g.name.clone()}</a></th>
            <td data-label="Owner">
                <span class="owner">{g.owner.clone()}</span>
                {away.then(|| view! {
                    " "
                    <Badge text=format!("away from home ({})", g.home) tone=Tone::Warning/>
                })}
            </td>
            <td data-label="Epoch" class="num">{g.owner_epoch.to_string()}</td>
            <td data-label="Migration" class="progress-cell">
                <Badge text=g.migration_status.to_string() tone=migration_tone(g.migration_status)/>
                {migrating.then(|| view! {
                    <RehomeBar rehomed=g.sites.rehomed total=g.sites.total waiting=g.sites.rehome_waiting compact=true/>
                })}
            </td>
            <td data-label="Sites">
                <span class="sites-total">{super::sites_text(g.sites.total)}</span>
                {counts}
            </td>
            <td data-label="Associations" data-sync=sync_attr>
                <Badge text=sync tone=sync_tone/>
            </td>
            <td data-label="Priority" class="num">{g.priority.to_string()}</td>
        </tr>
    }
}
