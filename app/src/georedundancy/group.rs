//! One peer group, live: owner, home and epoch, its sites' health and rehoming, its settings,
//! its associations and their sync, the capacity of every controller it could move to, and
//! its ownership history. Operators migrate it in two steps (choose a controller: a GET form,
//! so `?to=NAME` shows the preview, which can be shared; then confirm: a server-function form)
//! and fail it back home; both post without JavaScript and come back here.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;

use super::groups::site_counts;
use super::{
    association_sync_tone, availability_tone, get_migrate_preview, get_peer_group, group_href,
    known, may_fail_over, migration_tone, seconds_text, secs_to_ms, sites_text, span_text,
    title_text, CapacityBar, FailBackPeerGroup, MigratePeerGroup, PeerGroupDetail, RehomeBar, When,
};
use crate::auth::get_current_user;
use crate::components::{group_digits, submit_enclosing_form, Badge, ErrorPanel, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::fleet::MigrationStatus;
use engine::georedundancy::{
    Association, AssociationType, MigratePreview, OwnershipChange, PeerGroupView, SystemPeer,
    TakeoverAnswer,
};
use engine::time::Millis;

fn outcome_text(a: &TakeoverAnswer) -> String {
    format!(
        "Done: {} is now owned by {} (epoch {}).",
        a.group, a.owner, a.epoch
    )
}

type Outcome = Option<Result<TakeoverAnswer, ApiError>>;

#[component]
pub fn PeerGroupPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let name = Memo::new(move |_| params.with(|p| p.get("name").unwrap_or_default()));
    let to = Memo::new(move |_| {
        query
            .with(|q| q.get("to"))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    });
    let done = Memo::new(move |_| query.with(|q| q.get("done")));
    let migrate = ServerAction::<MigratePeerGroup>::new();
    let fail_back = ServerAction::<FailBackPeerGroup>::new();
    let live = use_live();
    // A group the server does not know is not asked for again on every live update (each
    // answer would be another 404): its generation is frozen. Another name asks again.
    let missing = RwSignal::new(None::<(String, u64)>);
    let refresh = Refresh::<(String, usize, usize)>::new();
    let data = Resource::new(
        move || {
            let n = name.get();
            let frozen = missing.with(|m| m.as_ref().filter(|(k, _)| *k == n).map(|(_, g)| *g));
            let g = frozen.unwrap_or_else(|| live.generation.get());
            (n, migrate.version().get(), fail_back.version().get(), g)
        },
        move |(n, m, f, g)| {
            let background = refresh.is_background(&(n.clone(), m, f), g);
            get_peer_group(n, background)
        },
    );
    Effect::new(move |_| {
        if let Some(Err(ApiError::NotFound(_))) = data.get() {
            missing.set(Some((name.get(), live.generation.get_untracked())));
        }
    });
    let refresh_preview = Refresh::<(String, Option<String>)>::new();
    let preview = Resource::new(
        move || (name.get(), to.get(), live.generation.get()),
        move |(n, t, g)| {
            let background = refresh_preview.is_background(&(n.clone(), t.clone()), g);
            async move {
                match t {
                    Some(t) => get_migrate_preview(n, t, background).await.map(Some),
                    None => Ok(None),
                }
            }
        },
    );
    let me = Resource::new(|| (), |_| get_current_user());
    let last = LastGood::<String, PeerGroupDetail>::new();
    let last_preview = LastGood::<(String, Option<String>), Option<MigratePreview>>::new();

    // One outcome shown at a time: the latest action's.
    Effect::watch(
        move || migrate.version().get(),
        move |_, _, _| fail_back.value().set(None),
        false,
    );
    Effect::watch(
        move || fail_back.version().get(),
        move |_, _, _| migrate.value().set(None),
        false,
    );
    // After a migrate (JavaScript): back to the group without the preview; the outcome stays.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = migrate.value().get() {
            if to.get_untracked().is_some() {
                navigate(
                    &group_href(&name.get_untracked()),
                    NavigateOptions {
                        replace: true,
                        scroll: false,
                        ..Default::default()
                    },
                );
            }
        }
    });
    let outcome: Signal<Outcome> =
        Signal::derive(move || migrate.value().get().or_else(|| fail_back.value().get()));

    let title = move || title_text(&name.get(), "Peer group");
    view! {
        <Title text=title/>
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <ol>
                <li><a href="/peer-groups">"Peer groups"</a></li>
                <li aria-current="page">{move || name.get()}</li>
            </ol>
        </nav>
        <Transition fallback=|| view! { <p class="loading">"Loading the peer group…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|u| u.role);
                let can_act = may_fail_over(role);
                let n = name.get_untracked();
                match last.settle(n.clone(), data.await) {
                    Shown::Fresh(d) => view! {
                        <GroupBody d can_act to done migrate fail_back outcome preview last_preview stale=None/>
                    }
                    .into_any(),
                    Shown::Stale(d, e) => view! {
                        <GroupBody d can_act to done migrate fail_back outcome preview last_preview stale=Some(e)/>
                    }
                    .into_any(),
                    Shown::Failed(e) => view! {
                        <h1>{format!("Peer group {n}")}</h1>
                        <ErrorPanel error=e/>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn GroupBody(
    d: PeerGroupDetail,
    can_act: bool,
    to: Memo<Option<String>>,
    done: Memo<Option<String>>,
    migrate: ServerAction<MigratePeerGroup>,
    fail_back: ServerAction<FailBackPeerGroup>,
    outcome: Signal<Outcome>,
    preview: Resource<Result<Option<MigratePreview>, ApiError>>,
    last_preview: LastGood<(String, Option<String>), Option<MigratePreview>>,
    stale: Option<ApiError>,
) -> impl IntoView {
    let PeerGroupDetail {
        group: g,
        controllers,
        this_controller,
        as_of: now,
    } = d;
    let away = g.owner != g.home;
    let name = g.name.clone();
    // Back from a plain form post (no JavaScript): the group as it is now.
    let done_text = {
        let g = g.clone();
        move || {
            let known = matches!(done.get().as_deref(), Some("migrate" | "fail-back"));
            (outcome.get().is_none() && known).then(|| {
                outcome_text(&TakeoverAnswer {
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    epoch: g.owner_epoch,
                })
            })
        }
    };
    let actions = can_act.then(|| {
        view! {
            <Actions
                g=g.clone()
                controllers=controllers.clone()
                to
                migrate
                fail_back
                preview
                last_preview
            />
        }
    });
    let counts = site_counts(&g);
    let rehoming = matches!(
        g.migration_status,
        MigrationStatus::Migrating | MigrationStatus::Complete
    ) || g.sites.rehome_waiting > 0;
    view! {
        <h1>{format!("Peer group {}", g.name)}</h1>
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <div
            class="status-strip geo-strip"
            data-testid="group-head"
            data-group=g.name.clone()
            data-owner=g.owner.clone()
            data-home=g.home.clone()
            data-epoch=g.owner_epoch.to_string()
            data-migration=g.migration_status.as_str()
        >
            <div>
                <span class="label">"Owner"</span>
                <span class="strip-value" data-testid="group-owner">
                    {g.owner.clone()}
                    {(g.owner == this_controller).then(|| view! { " " <Badge text="this controller" tone=Tone::Info/> })}
                </span>
            </div>
            <div>
                <span class="label">"Home"</span>
                <span class="strip-value">
                    {g.home.clone()}
                    {away.then(|| view! { " " <Badge text="away from home" tone=Tone::Warning/> })}
                </span>
            </div>
            <div>
                <span class="label">"Epoch"</span>
                <span class="strip-value num" data-testid="group-epoch">{g.owner_epoch.to_string()}</span>
            </div>
            <div>
                <span class="label">"Owned since"</span>
                <span class="strip-value">
                    {match known(g.owned_since) {
                        Some(t) => view! { <When t now/> }.into_any(),
                        None => view! { <span class="muted">"not recorded"</span> }.into_any(),
                    }}
                </span>
            </div>
            <div>
                <span class="label">"Migration"</span>
                <span class="strip-value">
                    <Badge text=g.migration_status.to_string() tone=migration_tone(g.migration_status)/>
                </span>
            </div>
        </div>
        <p class="form-status" role="status" aria-live="polite" data-testid="action-outcome">
            {move || {
                let text = match outcome.get() {
                    Some(Ok(a)) => Some(outcome_text(&a)),
                    _ => done_text(),
                };
                text.map(|t| view! { <span class="form-ok">{t}</span> })
            }}
        </p>
        {move || match outcome.get() {
            Some(Err(e)) => Some(view! { <ErrorPanel error=e/> }),
            _ => None,
        }}
        {actions}
        <div class="panels">
            <section class="panel" aria-labelledby="sites-heading">
                <h2 id="sites-heading">{format!("Sites ({})", group_digits(g.sites.total))}</h2>
                {counts}
                {if rehoming {
                    view! {
                        <h3 class="subheading">"Rehoming"</h3>
                        <RehomeBar rehomed=g.sites.rehomed total=g.sites.total waiting=g.sites.rehome_waiting/>
                        <p class="hint muted">
                            {format!(
                                "The owner admits at most {} per second.",
                                sites_text(g.max_subcloud_rehoming.into())
                            )}
                        </p>
                    }
                    .into_any()
                } else {
                    view! { <p class="muted">"No migration in progress."</p> }.into_any()
                }}
            </section>
            <section class="panel" aria-labelledby="settings-heading">
                <h2 id="settings-heading">"Settings"</h2>
                <dl class="props">
                    <dt>"Owned since"</dt>
                    <dd>
                        {match known(g.owned_since) {
                            Some(t) => view! { <time datetime=t.to_iso()>{t.to_iso()}</time> }.into_any(),
                            None => view! { <span class="muted">"not recorded"</span> }.into_any(),
                        }}
                    </dd>
                    <dt>"Priority"</dt>
                    <dd>{format!("{} (lower moves first in a takeover)", g.priority)}</dd>
                    <dt>"Max rehoming"</dt>
                    <dd>{format!("{} per second", sites_text(g.max_subcloud_rehoming.into()))}</dd>
                    <dt>"Fail-back hold-down"</dt>
                    <dd>{span_text(secs_to_ms(g.failback_hold_down_s))}</dd>
                    <dt>"State"</dt>
                    <dd>{g.state.to_string()}</dd>
                    <dt>"Revision"</dt>
                    <dd>{g.revision.to_string()}</dd>
                </dl>
            </section>
        </div>
        <section class="panel" aria-labelledby="associations-heading">
            <h2 id="associations-heading">{format!("Associations ({})", g.associations.len())}</h2>
            <AssociationTable associations=g.associations.clone() owner=g.owner.clone() now/>
        </section>
        <section class="panel" aria-labelledby="candidates-heading">
            <h2 id="candidates-heading">"Capacity of the associated controllers"</h2>
            <CandidateTable g=g.clone() controllers/>
        </section>
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"Ownership history"</h2>
            <HistoryTable history=g.history.clone() name now/>
        </section>
        <p class="as-of">"As of " <time datetime=now.to_iso()>{now.to_iso()}</time></p>
    }
}

/// Migrate (choose, preview, confirm) and fail back.
#[component]
fn Actions(
    g: PeerGroupView,
    controllers: Vec<SystemPeer>,
    to: Memo<Option<String>>,
    migrate: ServerAction<MigratePeerGroup>,
    fail_back: ServerAction<FailBackPeerGroup>,
    preview: Resource<Result<Option<MigratePreview>, ApiError>>,
    last_preview: LastGood<(String, Option<String>), Option<MigratePreview>>,
) -> impl IntoView {
    let action = group_href(&g.name);
    let chosen = to.get_untracked().unwrap_or_default();
    let options: Vec<(String, String)> = g
        .associations
        .iter()
        .filter(|a| a.controller != g.owner)
        .map(|a| {
            let state = controllers
                .iter()
                .find(|p| p.name == a.controller)
                .map(|p| format!(", {}", p.availability))
                .unwrap_or_default();
            (
                a.controller.clone(),
                format!("{} (priority {}{state})", a.controller, a.priority),
            )
        })
        .collect();
    let migrate_form = if options.is_empty() {
        view! {
            <p class="muted">"No other controller is associated with this group: it cannot be migrated."</p>
        }
        .into_any()
    } else {
        let known = options.iter().any(|(v, _)| *v == chosen);
        view! {
            <Form method="GET" action=action.clone() attr:class="inline-form geo-migrate-form" attr:aria-label="Choose where to migrate">
                <label for="migrate-to">
                    "Migrate to"
                    <select id="migrate-to" name="to" on:change=submit_enclosing_form data-testid="migrate-to">
                        <option value="" selected=!known prop:selected=!known>"Choose a controller…"</option>
                        {options
                            .into_iter()
                            .map(|(v, label)| {
                                let selected = v == chosen;
                                view! { <option value=v selected=selected prop:selected=selected>{label}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" class="button-secondary" data-testid="migrate-preview-button">"Preview"</button>
            </Form>
        }
        .into_any()
    };
    let group = g.name.clone();
    let cancel = action.clone();
    let preview_view = move || {
        let group = group.clone();
        let cancel = cancel.clone();
        Suspend::new(async move {
            let t = to.get_untracked();
            match last_preview.settle((group.clone(), t), preview.await) {
                Shown::Fresh(Some(p)) => {
                    view! { <PreviewPanel p migrate cancel stale=None/> }.into_any()
                }
                Shown::Stale(Some(p), e) => {
                    view! { <PreviewPanel p migrate cancel stale=Some(e)/> }.into_any()
                }
                Shown::Fresh(None) | Shown::Stale(None, _) => ().into_any(),
                Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
            }
        })
    };
    let fail_back_form = (g.owner != g.home).then(|| {
        let (group, home, owner) = (g.name.clone(), g.home.clone(), g.owner.clone());
        let hold = span_text(secs_to_ms(g.failback_hold_down_s));
        view! {
            <h3 class="subheading">"Fail back"</h3>
            <p>
                {format!(
                    "{} is away from its home controller {}. Failing back moves it to {} again (hold-down before a fail-back: {hold}).",
                    g.name, g.home, g.home
                )}
            </p>
            <ActionForm action=fail_back attr:class="inline-form geo-fail-back-form" attr:aria-label="Fail back">
                <input type="hidden" name="group" value=g.name.clone()/>
                <button
                    type="submit"
                    class="button-secondary"
                    data-testid="fail-back"
                    on:click=move |ev| {
                        if !confirm_fail_back(&group, &owner, &home) {
                            ev.prevent_default();
                        }
                    }
                >
                    {format!("Fail back to {}", g.home)}
                </button>
            </ActionForm>
        }
    });
    view! {
        <section class="panel geo-actions" aria-labelledby="actions-heading" data-testid="group-actions">
            <h2 id="actions-heading">"Move this group"</h2>
            <h3 class="subheading">"Migrate"</h3>
            <p class="hint muted">"Choose a controller to see what the migrate would do; nothing changes until you confirm."</p>
            {migrate_form}
            <Transition fallback=|| view! { <p class="loading">"Computing the preview…"</p> }>
                {preview_view}
            </Transition>
            {fail_back_form}
        </section>
    }
}

/// What a migrate would do, and the confirm button when it is allowed.
#[component]
fn PreviewPanel(
    p: MigratePreview,
    migrate: ServerAction<MigratePeerGroup>,
    cancel: String,
    stale: Option<ApiError>,
) -> impl IntoView {
    let owner_line = if p.owner_available {
        format!("{} answers heartbeats: it hands the group over.", p.from)
    } else {
        format!(
            "{} does not answer heartbeats; {} of the group's agents report they cannot reach it.",
            p.from,
            group_digits(p.evidence_unreachable)
        )
    };
    let headline = format!("{} from {} to {}", sites_text(p.sites), p.from, p.to);
    let warnings = (!p.warnings.is_empty()).then(|| {
        view! {
            <ul class="geo-warnings" aria-label="Warnings" data-testid="migrate-warnings">
                {p.warnings
                    .iter()
                    .map(|w| view! {
                        <li>
                            <span class="glyph" aria-hidden="true">"▲ "</span>
                            {w.clone()}
                        </li>
                    })
                    .collect_view()}
            </ul>
        }
    });
    let confirm = if p.allowed {
        let label = format!("Migrate {} to {}", p.group, p.to);
        let (group, to) = (p.group.clone(), p.to.clone());
        view! {
            <ActionForm action=migrate attr:class="inline-form geo-confirm-form" attr:aria-label="Confirm the migrate">
                <input type="hidden" name="group" value=group/>
                <input type="hidden" name="to" value=to/>
                <button type="submit" class="button-danger" data-testid="migrate-confirm">{label}</button>
                <a class="button-link" href=cancel>"Cancel"</a>
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <p class="form-error" data-testid="migrate-refused">
                "This migrate would be refused (see the warnings). "
                <a href=cancel>"Cancel"</a>
            </p>
        }
        .into_any()
    };
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <div
            class="geo-preview"
            data-testid="migrate-preview"
            data-allowed=p.allowed.to_string()
            data-from=p.from.clone()
            data-to=p.to.clone()
            role="region"
            aria-label="Migrate preview"
        >
            <p class="preview-summary"><strong>{headline}</strong></p>
            <dl class="props">
                <dt>"Current owner"</dt>
                <dd>{owner_line}</dd>
                <dt>"Online sites"</dt>
                <dd>{format!("{} of {}", group_digits(p.online_sites), group_digits(p.sites))}</dd>
                <dt>{format!("Free capacity on {}", p.to)}</dt>
                <dd data-headroom=p.target_headroom.to_string()>
                    {format!("{} beyond its reserve", sites_text(p.target_headroom))}
                    {(p.target_headroom < p.sites).then(|| view! {
                        " "
                        <Badge text="not enough" tone=Tone::Major/>
                    })}
                </dd>
                <dt>"Rehoming"</dt>
                <dd>{format!("about {}", seconds_text(p.rehoming_seconds as f64))}</dd>
            </dl>
            {warnings}
            {confirm}
        </div>
    }
}

/// Asks before failing a group back (browser only; without JavaScript the button posts at once).
fn confirm_fail_back(group: &str, owner: &str, home: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        window()
            .confirm_with_message(&format!(
                "Fail {group} back to {home}? {owner} hands the group over and its sites are rehomed."
            ))
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (group, owner, home);
        true
    }
}

#[component]
fn AssociationTable(associations: Vec<Association>, owner: String, now: Millis) -> impl IntoView {
    if associations.is_empty() {
        return view! { <p class="empty">"No controller is associated with this group."</p> }
            .into_any();
    }
    let rows = associations
        .into_iter()
        .map(|a| {
            let kind = match a.association_type {
                AssociationType::Primary => "primary",
                AssociationType::NonPrimary => "non-primary",
            };
            let message = if a.sync_message.trim().is_empty() {
                view! { <span class="muted">"—"</span> }.into_any()
            } else {
                view! { <span>{a.sync_message.clone()}</span> }.into_any()
            };
            let is_owner = a.controller == owner;
            view! {
                <tr data-testid="association-row" data-controller=a.controller.clone() data-sync=a.sync_status.as_str()>
                    <th scope="row">
                        {a.controller.clone()}
                        {is_owner.then(|| view! { " " <Badge text="owner" tone=Tone::Neutral/> })}
                    </th>
                    <td data-label="Priority" class="num">{a.priority.to_string()}</td>
                    <td data-label="Type">{kind}</td>
                    <td data-label="Sync">
                        <Badge text=a.sync_status.to_string() tone=association_sync_tone(a.sync_status)/>
                    </td>
                    <td data-label="Message" class="details">{message}</td>
                    <td data-label="Synced">
                        {match a.synced_at {
                            Some(t) => view! { <When t now/> }.into_any(),
                            None => view! { <span class="muted">"never"</span> }.into_any(),
                        }}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll geo-scroll">
            <table class="data geo-stack associations">
                <caption class="visually-hidden">"Controllers associated with the group, in priority order"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Controller"</th>
                        <th scope="col" class="num">"Priority"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col">"Sync"</th>
                        <th scope="col">"Message"</th>
                        <th scope="col">"Synced"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn CandidateTable(g: PeerGroupView, controllers: Vec<SystemPeer>) -> impl IntoView {
    if controllers.is_empty() {
        return view! { <p class="empty">"No associated controller is known as a peer."</p> }
            .into_any();
    }
    let rows = controllers
        .into_iter()
        .map(|p| {
            let priority = g
                .associations
                .iter()
                .find(|a| a.controller == p.name)
                .map(|a| a.priority.to_string())
                .unwrap_or_else(|| "—".into());
            let is_owner = p.name == g.owner;
            let fits = p.headroom() >= g.sites.total;
            let headroom = p.headroom();
            view! {
                <tr data-testid="candidate-row" data-controller=p.name.clone() data-headroom=headroom.to_string()>
                    <th scope="row">
                        {p.name.clone()}
                        {is_owner.then(|| view! { " " <Badge text="owner" tone=Tone::Neutral/> })}
                    </th>
                    <td data-label="Priority" class="num">{priority}</td>
                    <td data-label="Availability">
                        <Badge text=p.availability.to_string() tone=availability_tone(p.availability)/>
                    </td>
                    <td data-label="Load" class="geo-load">
                        <CapacityBar capacity=p.capacity reserved=p.reserved_capacity managed=p.managed/>
                    </td>
                    <td data-label="Free" class="num">
                        {group_digits(headroom)}
                        {(!is_owner && !fits).then(|| view! {
                            " "
                            <Badge text="too small for this group" tone=Tone::Major/>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="hint muted">
            {format!(
                "The group has {}; a controller takes it only with that much free capacity beyond its reserve (shaded).",
                sites_text(g.sites.total)
            )}
        </p>
        <div class="table-scroll geo-scroll">
            <table class="data geo-stack candidates">
                <caption class="visually-hidden">"Load and free capacity of each associated controller"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Controller"</th>
                        <th scope="col" class="num">"Priority"</th>
                        <th scope="col">"Availability"</th>
                        <th scope="col">"Load (managed, reserve shaded)"</th>
                        <th scope="col" class="num">"Free"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn HistoryTable(history: Vec<OwnershipChange>, name: String, now: Millis) -> impl IntoView {
    if history.is_empty() {
        return view! { <p class="empty">{format!("{name} has not changed owner yet.")}</p> }
            .into_any();
    }
    let dash = |s: &str| {
        if s.trim().is_empty() {
            "—".to_string()
        } else {
            s.to_string()
        }
    };
    let rows = history
        .into_iter()
        .map(|h| {
            let change = format!("{} → {}", dash(&h.from_controller), dash(&h.to_controller));
            view! {
                <tr
                    data-testid="history-row"
                    data-from=h.from_controller.clone()
                    data-to=h.to_controller.clone()
                    data-epoch=h.epoch.to_string()
                >
                    <th scope="row">
                        <time datetime=h.at.to_iso()>{h.at.to_iso()}</time>
                        <span class="muted">{format!(" ({})", super::relative(h.at, now))}</span>
                    </th>
                    <td data-label="Change">{change}</td>
                    <td data-label="Epoch" class="num">{h.epoch.to_string()}</td>
                    <td data-label="Reason" class="details">{dash(&h.reason)}</td>
                    <td data-label="By">{dash(&h.actor)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll geo-scroll">
            <table class="data geo-stack history">
                <caption class="visually-hidden">"Changes of owner, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"When (UTC)"</th>
                        <th scope="col">"Owner change"</th>
                        <th scope="col" class="num">"Epoch"</th>
                        <th scope="col">"Reason"</th>
                        <th scope="col">"By"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_owner_and_epoch() {
        assert_eq!(
            outcome_text(&TakeoverAnswer {
                group: "west".into(),
                owner: "madrid".into(),
                epoch: 130
            }),
            "Done: west is now owned by madrid (epoch 130)."
        );
    }
}
