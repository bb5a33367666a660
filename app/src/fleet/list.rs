//! The subcloud list: filters, sort and page live in the URL, so a view can be shared and
//! works without JavaScript (a plain GET form and links); after hydration the same form and
//! links navigate in place and only the table is fetched again. Live updates refresh the
//! rows in place.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::{get_filter_choices, get_subcloud_page};
use crate::components::{
    alarm_status_tone, availability_tone, deploy_tone, management_tone, page_summary, pager,
    sync_tone, Badge, ErrorPanel,
};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::fleet::{
    AvailabilityStatus, DeployClass, DeployStatus, ManagementState, SortDir, SortKey, SubcloudPage,
    SubcloudQuery, SyncStatus,
};
use engine::health::AlarmStatus;
use engine::ValidationError;

type ParsedQuery = Result<SubcloudQuery, ValidationError>;

#[component]
pub fn SubcloudsPage() -> impl IntoView {
    let params = use_query_map();
    let query: Memo<ParsedQuery> = Memo::new(move |_| {
        params.with(|m| {
            let pairs = crate::components::query_pairs(m, &SubcloudQuery::PARAMS);
            SubcloudQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        })
    });
    let live = use_live();
    let refresh = Refresh::<ParsedQuery>::new();
    let page = Resource::new(
        move || (query.get(), live.generation.get()),
        move |(q, g)| {
            let background = refresh.is_background(&q, g);
            async move {
                match q {
                    Ok(q) => get_subcloud_page(q, background).await,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
        },
    );
    let choices = Resource::new(|| (), |_| get_filter_choices());
    let last = LastGood::<Option<SubcloudQuery>, SubcloudPage>::new();
    // A URL with a bad filter is a bad request, not an empty list.
    #[cfg(feature = "ssr")]
    if query.get_untracked().is_err() {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(http::StatusCode::BAD_REQUEST);
        }
    }

    view! {
        <Title text="Subclouds"/>
        <h1>"Subclouds"</h1>
        <FilterForm query choices/>
        <Transition fallback=|| view! { <p class="loading">"Loading subclouds…"</p> }>
            {move || Suspend::new(async move {
                let q = query.get_untracked();
                match (last.settle(q.clone().ok(), page.await), q) {
                    (Shown::Fresh(p), Ok(q)) => view! { <SubcloudTable page=p query=q stale=None/> }.into_any(),
                    (Shown::Stale(p, e), Ok(q)) => view! { <SubcloudTable page=p query=q stale=Some(e)/> }.into_any(),
                    (Shown::Failed(e), _) => view! { <ErrorPanel error=e/> }.into_any(),
                    (_, Err(e)) => view! { <ErrorPanel error=e.into()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A labelled `<select>` of one filter; choosing a value applies it at once when JavaScript
/// runs, and with the Apply button otherwise.
#[component]
fn FilterSelect(
    name: &'static str,
    label: &'static str,
    options: Vec<String>,
    current: Signal<Option<String>>,
) -> impl IntoView {
    let id = format!("filter-{name}");
    let label_for = id.clone();
    view! {
        <label class="filter" for=label_for>
            <span>{label}</span>
            <select
                id=id
                name=name
                prop:value=move || current.get().unwrap_or_default()
                on:change=submit_enclosing_form
            >
                <option value="" selected=move || current.get().is_none()>"Any"</option>
                {options
                    .into_iter()
                    .map(|o| {
                        let v = o.clone();
                        let value = o.clone();
                        view! {
                            <option
                                value=value
                                selected=move || current.get().as_deref() == Some(v.as_str())
                            >
                                {o}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// Submits the form a control belongs to (through the router when hydrated).
fn submit_enclosing_form(ev: leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        if let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
            .and_then(|s| s.form())
        {
            let _ = form.request_submit();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

fn names<T: Copy + ToString>(all: &[T]) -> Vec<String> {
    all.iter().map(|v| v.to_string()).collect()
}

#[component]
fn FilterForm(
    query: Memo<ParsedQuery>,
    choices: Resource<Result<engine::fleet::FilterChoices, ApiError>>,
) -> impl IntoView {
    let field = move |f: fn(&SubcloudQuery) -> Option<String>| {
        Signal::derive(move || query.with(|q| q.as_ref().ok().and_then(f)))
    };
    let sort = move || query.with(|q| q.as_ref().map(|q| q.sort).unwrap_or(SortKey::Name));
    let dir = move || query.with(|q| q.as_ref().map(|q| q.dir).unwrap_or(SortDir::Asc));
    let per_page = move || {
        query.with(|q| {
            q.as_ref()
                .map(|q| q.per_page)
                .unwrap_or(SubcloudQuery::DEFAULT_PER_PAGE)
        })
    };
    view! {
        <Form method="GET" action="/subclouds" attr:class="filters" attr:aria-label="Filter subclouds">
            <label class="filter filter-search" for="filter-q">
                <span>"Name or city"</span>
                <input
                    id="filter-q"
                    type="search"
                    name="q"
                    maxlength="64"
                    placeholder="e.g. lyon"
                    prop:value=move || field(|q| q.search.clone()).get().unwrap_or_default()
                    value=move || field(|q| q.search.clone()).get().unwrap_or_default()
                />
            </label>
            <FilterSelect name="availability" label="Availability" options=names(AvailabilityStatus::ALL) current=field(|q| q.availability.map(|v| v.to_string()))/>
            <FilterSelect name="alarm" label="Alarm status" options=names(AlarmStatus::ALL) current=field(|q| q.alarm.map(|v| v.to_string()))/>
            <FilterSelect name="sync" label="Sync" options=names(SyncStatus::ALL) current=field(|q| q.sync.map(|v| v.to_string()))/>
            <FilterSelect name="management" label="Management" options=names(ManagementState::ALL) current=field(|q| q.management.map(|v| v.to_string()))/>
            <FilterSelect name="deploy_class" label="Deploy phase" options=names(DeployClass::ALL) current=field(|q| q.deploy_class.map(|v| v.to_string()))/>
            <FilterSelect name="deploy" label="Deploy status" options=names(DeployStatus::ALL) current=field(|q| q.deploy.map(|v| v.to_string()))/>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let c = choices.await.unwrap_or_default();
                    view! {
                        <FilterSelect name="group" label="Group" options=c.groups current=field(|q| q.group.clone())/>
                        <FilterSelect name="peer_group" label="Peer group" options=c.peer_groups current=field(|q| q.peer_group.clone())/>
                    }
                })}
            </Transition>
            <input type="hidden" name="sort" value=move || sort().to_string()/>
            <input type="hidden" name="dir" value=move || dir().to_string()/>
            <input type="hidden" name="per_page" value=move || per_page().to_string()/>
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <a href="/subclouds" class="button-link">"Clear"</a>
            </div>
        </Form>
    }
}

/// A sortable column header: a link that sorts by this column (toggling direction when it is
/// already the sort column).
#[component]
fn SortHeader(label: &'static str, key: SortKey, query: SubcloudQuery) -> impl IntoView {
    let active = query.sort == key;
    let next_dir = match (active, query.dir, key) {
        (true, SortDir::Asc, _) => SortDir::Desc,
        (true, SortDir::Desc, _) => SortDir::Asc,
        // Worst alarm first is what an operator wants on the first click.
        (false, _, SortKey::Alarm) => SortDir::Desc,
        (false, _, _) => SortDir::Asc,
    };
    let href = format!(
        "/subclouds{}",
        SubcloudQuery {
            sort: key,
            dir: next_dir,
            page: 1,
            ..query.clone()
        }
        .to_query_string()
    );
    let aria_sort = match (active, query.dir) {
        (false, _) => "none",
        (true, SortDir::Asc) => "ascending",
        (true, SortDir::Desc) => "descending",
    };
    let arrow = match (active, query.dir) {
        (false, _) => "",
        (true, SortDir::Asc) => " ↑",
        (true, SortDir::Desc) => " ↓",
    };
    view! {
        <th scope="col" aria-sort=aria_sort>
            <a href=href>{label}<span aria-hidden="true">{arrow}</span></a>
        </th>
    }
}

#[component]
fn SubcloudTable(
    page: SubcloudPage,
    query: SubcloudQuery,
    stale: Option<ApiError>,
) -> impl IntoView {
    let pages = page.page_count();
    let summary = page_summary(
        "subclouds",
        page.page,
        page.per_page,
        page.rows.len(),
        page.matching,
    );
    let link = {
        let query = query.clone();
        move |p: u32| {
            format!(
                "/subclouds{}",
                SubcloudQuery {
                    page: p,
                    ..query.clone()
                }
                .to_query_string()
            )
        }
    };
    let q = query.clone();
    let header = move |label: &'static str, key: SortKey| {
        view! { <SortHeader label key query=q.clone()/> }
    };
    // A strategy over exactly these subclouds: the create form with this list's filter.
    let roll_out = query.is_filtered().then(|| {
        let filter = SubcloudQuery {
            sort: SubcloudQuery::default().sort,
            dir: SubcloudQuery::default().dir,
            page: 1,
            per_page: SubcloudQuery::DEFAULT_PER_PAGE,
            ..query.clone()
        }
        .to_query_string();
        format!(
            "/orchestration/new?target=filter&target_query={}",
            engine::url::encode_query_value(filter.trim_start_matches('?'))
        )
    });
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <div class="list-head">
            <p class="result-count" role="status" data-matching=page.matching>{summary.clone()}</p>
            {roll_out.map(|href| view! {
                <a class="button-link roll-out" href=href>"Roll out to these"</a>
            })}
        </div>
        <div class="table-scroll">
            <table class="data subclouds">
                <caption class="visually-hidden">{summary}</caption>
                <thead>
                    <tr>
                        {header("Name", SortKey::Name)}
                        {header("Availability", SortKey::Availability)}
                        {header("Alarms", SortKey::Alarm)}
                        {header("Sync", SortKey::Sync)}
                        {header("Management", SortKey::Management)}
                        {header("Deploy status", SortKey::Deploy)}
                        {header("Version", SortKey::Version)}
                        {header("Group", SortKey::Group)}
                        {header("Peer group", SortKey::PeerGroup)}
                        {header("Controller", SortKey::Controller)}
                        {header("City", SortKey::City)}
                    </tr>
                </thead>
                <tbody>
                    {page
                        .rows
                        .into_iter()
                        .map(|s| {
                            let alarms = s.alarms;
                            let counts = (alarms.total() > 0).then(|| {
                                let spoken = format!(
                                    "{} critical, {} major, {} minor, {} warning",
                                    alarms.critical, alarms.major, alarms.minor, alarms.warnings,
                                );
                                let short = format!(
                                    "{}C {}M {}m {}w",
                                    alarms.critical, alarms.major, alarms.minor, alarms.warnings,
                                );
                                view! {
                                    <span class="alarm-counts">
                                        <span aria-hidden="true">{short}</span>
                                        <span class="visually-hidden">{spoken}</span>
                                    </span>
                                }
                            });
                            view! {
                                <tr data-subcloud=s.name.clone()>
                                    <th scope="row">
                                        <a href=format!("/subclouds/{}", s.name)>{s.name.clone()}</a>
                                    </th>
                                    <td><Badge text=s.availability.to_string() tone=availability_tone(s.availability)/></td>
                                    <td>
                                        <Badge text=s.alarm_status.to_string() tone=alarm_status_tone(s.alarm_status)/>
                                        {counts}
                                    </td>
                                    <td><Badge text=s.sync_status.to_string() tone=sync_tone(s.sync_status)/></td>
                                    <td><Badge text=s.management.to_string() tone=management_tone(s.management)/></td>
                                    <td><Badge text=s.deploy_status.to_string() tone=deploy_tone(s.deploy_status)/></td>
                                    <td>{s.software_version}</td>
                                    <td>{s.group}</td>
                                    <td>{s.peer_group.unwrap_or_else(|| "—".into())}</td>
                                    <td>{s.controller}</td>
                                    <td>{format!("{}, {}", s.city, s.country)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.page, pages, link)}
    }
}
