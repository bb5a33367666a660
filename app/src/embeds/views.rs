//! The embed views a portal frames. Each reads its token from `?t=`, renders complete on the
//! server (so it shows with JavaScript off), and once hydrated refreshes itself every few
//! seconds: an embed has no session, so no event stream, only its token.

use std::future::Future;
use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{get_embed_map, get_embed_peer_group, get_embed_status, get_embed_strategy, Embedded};
use crate::alarms::status_tile;
use crate::components::{group_digits, Badge, ErrorPanel, Tone};
use crate::georedundancy::{association_sync_tone, migration_tone};
use crate::orchestration::{eta_text, strategy_tone, wave_tone, Progress, ProgressBar};
use crate::ApiError;
use engine::fleet::FleetMap;
use engine::georedundancy::PeerGroupView;
use engine::health::StatusDigest;
use engine::orchestration::StrategyDetail;

/// How often a hydrated embed fetches its data again.
const REFRESH: Duration = Duration::from_secs(5);

/// A counter that goes up every [`REFRESH`] in the browser (stays 0 on the server).
fn use_refresh_tick() -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || set_tick.update(|n| *n += 1), REFRESH) {
            on_cleanup(move || h.clear());
        }
    });
    tick
}

/// The frame of every embed view: its data fetched with the page's token, refreshed live,
/// the last good data kept (with a notice) if a refresh fails, and a refusal (bad, revoked
/// or expired link) shown as such.
fn embed_view<T, Fut, V>(
    title: &'static str,
    fetch: impl Fn(String) -> Fut + Copy + Send + Sync + 'static,
    body: impl Fn(T) -> V + Copy + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + PartialEq + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    Fut: Future<Output = Result<Embedded<T>, ApiError>> + Send + 'static,
    V: IntoView + 'static,
{
    let query = use_query_map();
    let token = move || query.with(|q| q.get("t").unwrap_or_default());
    let tick = use_refresh_tick();
    let data = Resource::new(move || (token(), tick.get()), move |(t, _)| fetch(t));
    let last_good = StoredValue::new(None::<Embedded<T>>);
    view! {
        <Title text=title/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(e) => {
                        last_good.set_value(Some(e.clone()));
                        view! { <EmbedHead label=e.label.clone() title stale=None/> {body(e.data)} }.into_any()
                    }
                    Err(err) => match (last_good.get_value(), &err) {
                        // A refused link is final: say so, and drop what was shown.
                        (_, ApiError::Forbidden(_)) | (None, _) => view! {
                            <h1 class="embed-title">{title}</h1>
                            <div class="embed-refused" data-embed-refused="">
                                <ErrorPanel error=err/>
                            </div>
                        }.into_any(),
                        (Some(e), _) => view! {
                            <EmbedHead label=e.label.clone() title stale=Some(err)/> {body(e.data)}
                        }.into_any(),
                    },
                }
            })}
        </Transition>
    }
}

#[component]
fn EmbedHead(label: String, title: &'static str, stale: Option<ApiError>) -> impl IntoView {
    view! {
        <header class="embed-head">
            <h1 class="embed-title">{title}</h1>
            <p class="muted embed-label">{label} " · Murmuration"</p>
        </header>
        {stale.map(|e| view! {
            <p class="notice" role="status" data-stale="">
                {format!("Showing the last data received; the refresh failed: {e}")}
            </p>
        })}
    }
}

/// `/embed/status`: the verdict, the counts and the problems.
#[component]
pub fn StatusEmbed() -> impl IntoView {
    embed_view("Fleet status", get_embed_status, |d: StatusDigest| {
        view! { <crate::alarms::StatusBody d stale=None embedded=true/> }
    })
}

/// `/embed/map`: the fleet map at the link's saved view, with its legend.
#[component]
pub fn MapEmbed() -> impl IntoView {
    embed_view("Fleet map", get_embed_map, |m: FleetMap| {
        view! {
            <p class="map-summary" data-map-summary="">
                {format!("{} sites in view", group_digits(m.in_view))}
                " · updated "
                <time datetime=m.at.to_iso() data-updated="">{m.at.to_iso()}</time>
            </p>
            <crate::fleet::Legend m=m.clone() embedded=true/>
            <crate::fleet::MapSvg m embedded=true/>
        }
    })
}

/// `/embed/strategy`: one strategy's state, progress and waves.
#[component]
pub fn StrategyEmbed() -> impl IntoView {
    embed_view(
        "Strategy progress",
        get_embed_strategy,
        |d: StrategyDetail| {
            let s = d.summary;
            let progress = Progress::of(&s);
            let waves = d
                .waves
                .iter()
                .map(|w| {
                    let p = Progress::of_counts(&w.counts);
                    view! {
                        <tr data-wave=w.index.to_string()>
                            <th scope="row">{w.name.clone()}</th>
                            <td>{group_digits(w.sites)}</td>
                            <td><Badge text=w.state.to_string() tone=wave_tone(w.state)/></td>
                            <td class="progress-cell"><ProgressBar progress=p compact=true/></td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <section class="panel strategy-head" data-state=s.state.as_str()>
                    <h2 class="strategy-name">
                        {format!("#{} {} on {}", s.id, s.strategy_type, s.target)}
                        {(!s.args.is_empty()).then(|| format!(" ({})", s.args))}
                    </h2>
                    <div class="strategy-state-line">
                        <Badge text=s.state.to_string() tone=strategy_tone(s.state)/>
                        {eta_text(&s).map(|e| view! { <span class="eta" data-eta="">{e}</span> })}
                    </div>
                    {(!s.reason.is_empty()).then(|| view! { <p class="strategy-reason" data-reason="">{s.reason.clone()}</p> })}
                    <ProgressBar progress/>
                </section>
                <table class="data embed-waves">
                    <caption>"Waves"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Wave"</th>
                            <th scope="col">"Sites"</th>
                            <th scope="col">"State"</th>
                            <th scope="col">"Progress"</th>
                        </tr>
                    </thead>
                    <tbody>{waves}</tbody>
                </table>
            }
        },
    )
}

/// `/embed/peer-group`: a peer group's owner, its sites' health and its associations.
#[component]
pub fn PeerGroupEmbed() -> impl IntoView {
    embed_view(
        "Peer-group health",
        get_embed_peer_group,
        |g: PeerGroupView| {
            let sites = &g.sites;
            // Only sites offline or critical call for attention here.
            let tiles = [
                ("Sites", sites.total, Tone::Neutral),
                ("Online", sites.online, Tone::Neutral),
                ("Offline", sites.offline, Tone::Critical),
                ("Critical", sites.critical, Tone::Critical),
                ("Degraded", sites.degraded, Tone::Neutral),
                ("Health unknown", sites.health_unknown, Tone::Neutral),
            ]
            .into_iter()
            .map(|(label, n, alert)| status_tile(label, n, alert, None))
            .collect_view();
            let associations = g
            .associations
            .iter()
            .map(|a| {
                view! {
                    <tr data-controller=a.controller.clone()>
                        <th scope="row">{a.controller.clone()}</th>
                        <td>{a.priority}</td>
                        <td>{a.association_type.to_string()}</td>
                        <td><Badge text=a.sync_status.to_string() tone=association_sync_tone(a.sync_status)/></td>
                    </tr>
                }
            })
            .collect_view();
            view! {
                <section class="panel" data-group=g.name.clone()>
                    <h2>{g.name.clone()}</h2>
                    <p class="group-owner" data-owner=g.owner.clone()>
                        {format!("Managed by {} (epoch {}) since {}", g.owner, g.owner_epoch, g.owned_since.to_iso())}
                        " "
                        <Badge text=g.migration_status.to_string() tone=migration_tone(g.migration_status)/>
                    </p>
                    <ul class="status-tiles" aria-label="Sites">{tiles}</ul>
                </section>
                <table class="data embed-associations">
                    <caption>"Controllers associated, by priority"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Controller"</th>
                            <th scope="col">"Priority"</th>
                            <th scope="col">"Type"</th>
                            <th scope="col">"Sync"</th>
                        </tr>
                    </thead>
                    <tbody>{associations}</tbody>
                </table>
            }
        },
    )
}
