//! The alarm list: filters and page live in the URL (a plain GET form and links without
//! JavaScript, in place after hydration, like the subcloud list). Operators and admins
//! acknowledge alarms with a server-function form: checked rows or one row's own button; it
//! posts without JavaScript (and comes back to the same filtered list with a message) and
//! updates in place with it. Live updates refresh the table in place.

use std::collections::BTreeSet;

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use super::{fetch_alarm_page, AcknowledgeAlarms};
use crate::auth::{get_current_user, FormStatus};
use crate::components::{
    group_digits, page_summary, pager, severity_tone, submit_enclosing_form, Badge, ErrorPanel,
};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::auth::Role;
use engine::health::{AlarmCounts, AlarmPage, AlarmQuery, AlarmRow, AlarmSeverity, AlarmState};
use engine::ValidationError;

type ParsedQuery = Result<AlarmQuery, ValidationError>;

/// URL keys besides the repeatable `severity`.
const KEYS: [&str; 5] = ["state", "subcloud", "ack", "page", "per_page"];

fn parse_query(m: &ParamsMap) -> ParsedQuery {
    let mut pairs: Vec<(&'static str, String)> = m
        .get_all("severity")
        .unwrap_or_default()
        .into_iter()
        .map(|v| ("severity", v))
        .collect();
    pairs.extend(crate::components::query_pairs(m, &KEYS));
    AlarmQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
}

fn acknowledged_text(n: u64) -> String {
    if n == 1 {
        "Acknowledged 1 alarm.".to_string()
    } else {
        format!("Acknowledged {} alarms.", group_digits(n))
    }
}

#[component]
pub fn AlarmsPage() -> impl IntoView {
    let params = use_query_map();
    let query: Memo<ParsedQuery> = Memo::new(move |_| params.with(parse_query));
    let ack = ServerAction::<AcknowledgeAlarms>::new();
    let live = use_live();
    let refresh = Refresh::<(ParsedQuery, usize)>::new();
    let page = Resource::new(
        move || (query.get(), ack.version().get(), live.generation.get()),
        move |(q, v, g)| {
            let background = refresh.is_background(&(q.clone(), v), g);
            async move {
                match q {
                    Ok(q) => fetch_alarm_page(q, background).await,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
        },
    );
    let me = Resource::new(|| (), |_| get_current_user());
    let last = LastGood::<Option<AlarmQuery>, AlarmPage>::new();
    // Rows the operator checked; kept across live refreshes (which redraw the table).
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    // A URL with a bad filter is a bad request, not an empty list.
    #[cfg(feature = "ssr")]
    if query.get_untracked().is_err() {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(http::StatusCode::BAD_REQUEST);
        }
    }
    // After an acknowledgement: nothing stays checked. On another filter: the message goes.
    Effect::new(move |_| {
        if let Some(Ok(_)) = ack.value().get() {
            selected.set(BTreeSet::new());
        }
    });
    Effect::new(move |prev: Option<ParsedQuery>| {
        let q = query.get();
        if prev.is_some_and(|p| p != q) {
            ack.value().set(None);
        }
        q
    });
    let message = Signal::derive(move || match ack.value().get() {
        Some(Ok(n)) => Some((true, acknowledged_text(n))),
        Some(Err(e)) => Some((false, e.to_string())),
        // Back from a plain form post (no JavaScript): the count is in the URL.
        None => params
            .with(|m| m.get("acknowledged"))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|n| (true, acknowledged_text(n))),
    });

    view! {
        <Title text="Alarms"/>
        <h1>"Alarms"</h1>
        <FilterForm query page/>
        <FormStatus message/>
        <Transition fallback=|| view! { <p class="loading">"Loading alarms…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|u| u.role);
                let can_ack = matches!(role, Some(Role::Admin | Role::Operator));
                let q = query.get_untracked();
                let result = page.await;
                match (last.settle(q.clone().ok(), result), q) {
                    (Shown::Fresh(p), Ok(q)) => {
                        view! { <AlarmTable page=p query=q can_ack selected ack stale=None/> }.into_any()
                    }
                    (Shown::Stale(p, e), Ok(q)) => {
                        view! { <AlarmTable page=p query=q can_ack selected ack stale=Some(e)/> }.into_any()
                    }
                    (Shown::Failed(e), _) => view! { <ErrorPanel error=e/> }.into_any(),
                    (_, Err(e)) => view! { <ErrorPanel error=e.into()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn severity_label(s: AlarmSeverity) -> &'static str {
    match s {
        AlarmSeverity::Critical => "Critical",
        AlarmSeverity::Major => "Major",
        AlarmSeverity::Minor => "Minor",
        AlarmSeverity::Warning => "Warning",
    }
}

fn count_of(c: AlarmCounts, s: AlarmSeverity) -> u32 {
    match s {
        AlarmSeverity::Critical => c.critical,
        AlarmSeverity::Major => c.major,
        AlarmSeverity::Minor => c.minor,
        AlarmSeverity::Warning => c.warnings,
    }
}

#[component]
fn FilterForm(
    query: Memo<ParsedQuery>,
    page: Resource<Result<AlarmPage, ApiError>>,
) -> impl IntoView {
    let ok = move || query.get().ok();
    let state = move || {
        ok().map(|q| q.state)
            .unwrap_or(AlarmState::Active)
            .as_str()
            .to_string()
    };
    let subcloud = move || ok().and_then(|q| q.subcloud).unwrap_or_default();
    let ack = move || match ok().and_then(|q| q.acknowledged) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    };
    let per_page = move || {
        ok().map(|q| q.per_page)
            .filter(|n| *n != AlarmQuery::DEFAULT_PER_PAGE)
    };
    let chips = AlarmSeverity::ALL
        .iter()
        .map(|&s| {
            let has = move || query.with(|q| q.as_ref().is_ok_and(|q| q.severities.contains(&s)));
            let id = format!("filter-severity-{}", s.as_str());
            let label_for = id.clone();
            view! {
                <label class="chip" for=label_for data-severity=s.as_str()>
                    <input
                        id=id
                        type="checkbox"
                        name="severity"
                        value=s.as_str()
                        checked=has
                        prop:checked=has
                        on:change=submit_enclosing_form
                    />
                    <Badge text=severity_label(s) tone=severity_tone(s)/>
                    // Only the count is redrawn by refreshes: the checkbox keeps focus.
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            page.await.ok().map(|p| {
                                let n = count_of(p.active, s);
                                view! {
                                    <span class="chip-count" title="active in the whole fleet">
                                        {group_digits(n.into())}
                                        <span class="visually-hidden">" active"</span>
                                    </span>
                                }
                            })
                        })}
                    </Transition>
                </label>
            }
        })
        .collect_view();
    let state_options = [
        (AlarmState::Active, "Active"),
        (AlarmState::Cleared, "Cleared"),
        (AlarmState::All, "Active and cleared"),
    ];
    let ack_options = [
        ("", "Any"),
        ("no", "Not acknowledged"),
        ("yes", "Acknowledged"),
    ];
    view! {
        <Form method="GET" action="/alarms" attr:class="filters alarm-filters" attr:aria-label="Filter alarms">
            <fieldset class="filter severity-filter">
                <legend>"Severity (active in the fleet)"</legend>
                <div class="chips">{chips}</div>
            </fieldset>
            <label class="filter" for="filter-state">
                <span>"State"</span>
                <select id="filter-state" name="state" prop:value=state on:change=submit_enclosing_form>
                    {state_options
                        .into_iter()
                        .map(|(v, label)| {
                            view! {
                                <option value=v.as_str() selected=move || state() == v.as_str()>{label}</option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="filter" for="filter-ack">
                <span>"Acknowledged"</span>
                <select id="filter-ack" name="ack" prop:value=ack on:change=submit_enclosing_form>
                    {ack_options
                        .into_iter()
                        .map(|(v, label)| {
                            view! { <option value=v selected=move || ack() == v>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="filter" for="filter-subcloud">
                <span>"Subcloud (exact name)"</span>
                <input
                    id="filter-subcloud"
                    type="search"
                    name="subcloud"
                    maxlength="64"
                    placeholder="e.g. lyon-0001"
                    prop:value=subcloud
                    value=subcloud
                />
            </label>
            {move || per_page().map(|n| view! { <input type="hidden" name="per_page" value=n.to_string()/> })}
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <a href="/alarms" class="button-link">"Clear"</a>
            </div>
        </Form>
    }
}

#[component]
fn AlarmTable(
    page: AlarmPage,
    query: AlarmQuery,
    can_ack: bool,
    selected: RwSignal<BTreeSet<i64>>,
    ack: ServerAction<AcknowledgeAlarms>,
    stale: Option<ApiError>,
) -> impl IntoView {
    let pages = page.page_count();
    let summary = page_summary(
        "alarms",
        page.page,
        page.per_page,
        page.rows.len(),
        page.matching,
    );
    let link = {
        let query = query.clone();
        move |p: u32| {
            format!(
                "/alarms{}",
                AlarmQuery {
                    page: p,
                    ..query.clone()
                }
                .to_query_string()
            )
        }
    };
    let ackable = |a: &AlarmRow| a.cleared_at.is_none() && !a.acknowledged;
    let any_ackable = can_ack && page.rows.iter().any(ackable);
    let empty = page.rows.is_empty();
    let rows = page
        .rows
        .into_iter()
        .map(|a| {
            let id = a.id;
            let can = can_ack && ackable(&a);
            let what = format!("{} on {}", a.alarm_id, a.subcloud);
            let select = can_ack.then(|| {
                let check = can.then(|| {
                    let label = format!("Select {what}");
                    view! {
                        <input
                            type="checkbox"
                            name="ids[]"
                            value=id.to_string()
                            aria-label=label
                            prop:checked=move || selected.with(|s| s.contains(&id))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                selected.update(|s| {
                                    if on {
                                        s.insert(id);
                                    } else {
                                        s.remove(&id);
                                    }
                                });
                            }
                        />
                    }
                });
                view! { <td class="select">{check}</td> }
            });
            let action = can_ack.then(|| {
                let button = can.then(|| {
                    view! {
                        <button type="submit" name="one" value=id.to_string() class="row-ack">
                            "Acknowledge"
                            <span class="visually-hidden">{format!(" {what}")}</span>
                        </button>
                    }
                });
                view! { <td class="row-action">{button}</td> }
            });
            let acked = match (a.acknowledged, a.acknowledged_by, a.acknowledged_at) {
                (false, _, _) => view! { <span class="muted">"no"</span> }.into_any(),
                (true, by, at) => view! {
                    <span class="acked-by">{format!("by {}", by.unwrap_or_else(|| "—".into()))}</span>
                    {at.map(|t| view! { " " <time datetime=t.to_iso()>{t.to_iso()}</time> })}
                }
                .into_any(),
            };
            let subcloud_href = format!("/subclouds/{}", a.subcloud);
            view! {
                <tr
                    data-alarm-row=id.to_string()
                    data-severity=a.severity.as_str()
                    data-acknowledged=a.acknowledged.to_string()
                    class:cleared=a.cleared_at.is_some()
                >
                    {select}
                    <td><Badge text=a.severity.to_string() tone=severity_tone(a.severity)/></td>
                    <td class="alarm-id">{a.alarm_id}</td>
                    <td class="subcloud"><a href=subcloud_href>{a.subcloud}</a></td>
                    <td class="reason">{a.reason}</td>
                    <td class="entity">{a.entity}</td>
                    <td>{a.source}</td>
                    <td class="raised"><time datetime=a.raised_at.to_iso()>{a.raised_at.to_iso()}</time></td>
                    <td>
                        {match a.cleared_at {
                            Some(c) => view! { <time datetime=c.to_iso()>{c.to_iso()}</time> }.into_any(),
                            None => view! { <span class="muted">"active"</span> }.into_any(),
                        }}
                    </td>
                    <td class="acked">{acked}</td>
                    {action}
                </tr>
            }
        })
        .collect_view();
    let table = view! {
        <div class="table-scroll">
            <table class="data alarm-list">
                <caption class="visually-hidden">{summary.clone()}</caption>
                <thead>
                    <tr>
                        {can_ack.then(|| view! { <th scope="col"><span class="visually-hidden">"Select"</span></th> })}
                        <th scope="col">"Severity"</th>
                        <th scope="col">"Alarm"</th>
                        <th scope="col">"Subcloud"</th>
                        <th scope="col">"Reason"</th>
                        <th scope="col">"Entity"</th>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Raised (UTC)"</th>
                        <th scope="col">"Cleared (UTC)"</th>
                        <th scope="col">"Acknowledged"</th>
                        {can_ack.then(|| view! { <th scope="col"><span class="visually-hidden">"Action"</span></th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    };
    let body = if empty {
        view! { <p class="empty">"No alarms match these filters."</p> }.into_any()
    } else if can_ack {
        let back = query.to_query_string();
        view! {
            <ActionForm action=ack attr:class="ack-form" attr:aria-label="Acknowledge alarms">
                <input type="hidden" name="back" value=back/>
                {any_ackable.then(|| view! {
                    <div class="ack-bar">
                        <button type="submit" class="ack-selected">"Acknowledge selected"</button>
                        <span class="hint">"or a row's own button"</span>
                    </div>
                })}
                {table}
            </ActionForm>
        }
        .into_any()
    } else {
        table.into_any()
    };
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <p class="result-count" role="status" data-matching=page.matching>{summary}</p>
        {body}
        {pager(page.page, pages, link)}
        <p class="as-of">"As of " <time datetime=page.as_of.to_iso()>{page.as_of.to_iso()}</time></p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_parse_with_repeated_severities() {
        let mut m = ParamsMap::new();
        m.insert("severity", "major".into());
        m.insert("severity", "critical".into());
        m.insert("ack", "no".into());
        m.insert("acknowledged", "3".into());
        let q = parse_query(&m).unwrap();
        assert_eq!(
            q.severities,
            vec![AlarmSeverity::Critical, AlarmSeverity::Major]
        );
        assert_eq!(q.acknowledged, Some(false));
        let mut bad = ParamsMap::new();
        bad.insert("state", "sideways".into());
        assert_eq!(parse_query(&bad).unwrap_err().field, "state");
    }

    #[test]
    fn messages() {
        assert_eq!(acknowledged_text(1), "Acknowledged 1 alarm.");
        assert_eq!(acknowledged_text(1200), "Acknowledged 1,200 alarms.");
    }
}
