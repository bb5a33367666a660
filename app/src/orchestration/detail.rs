//! One strategy, live: state, reason, progress and ETA; the operator actions its state allows
//! (server-function forms: they post without JavaScript and come back here, and update in place
//! with it; abort asks for confirmation when JavaScript runs); the waves; running steps by
//! phase; the latest failures; and the per-site steps, filtered (`state`, `wave`) and paged
//! (`page`) in the URL.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

use super::list::may_orchestrate;
use super::{
    eta_text, get_strategy, step_tone, strategy_tone, type_label, wave_tone, ActOnStrategy,
    Progress, ProgressBar, StrategyView,
};
use crate::auth::get_current_user;
use crate::components::{
    group_digits, page_summary, pager, submit_enclosing_form, Badge, ErrorPanel, TableScroll,
};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::orchestration::{
    format_duration, StepQuery, StepRow, StepState, StrategyAction, StrategyDetail, StrategyState,
    WaveView,
};
use engine::ValidationError;

type ParsedQuery = Result<StepQuery, ValidationError>;

fn parse_query(m: &ParamsMap) -> ParsedQuery {
    let pairs = crate::components::query_pairs(m, &["state", "wave", "page", "per_page"]);
    StepQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
}

/// `/orchestration/12?state=failed`: the strategy's page with a step filter.
fn page_link(id: i64, q: &StepQuery) -> String {
    let qs = q.to_query_string();
    if qs.is_empty() {
        format!("/orchestration/{id}")
    } else {
        format!("/orchestration/{id}?{qs}")
    }
}

fn action_label(a: StrategyAction) -> &'static str {
    match a {
        StrategyAction::Apply => "Apply",
        StrategyAction::Pause => "Pause",
        StrategyAction::Resume => "Resume",
        StrategyAction::Abort => "Abort",
        StrategyAction::Approve => "Approve the rest",
    }
}

fn action_done(to: StrategyState) -> String {
    format!("Done: the strategy is now {to}.")
}

#[component]
pub fn StrategyPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| p.get("id")).and_then(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|n| *n > 0 && s.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    let query_map = use_query_map();
    let query: Memo<ParsedQuery> = Memo::new(move |_| query_map.with(parse_query));
    let act = ServerAction::<ActOnStrategy>::new();
    let live = use_live();
    let refresh = Refresh::<(Option<i64>, ParsedQuery, usize)>::new();
    let data = Resource::new(
        move || {
            (
                id.get(),
                query.get(),
                act.version().get(),
                live.generation.get(),
            )
        },
        move |(id, q, v, g)| {
            let background = refresh.is_background(&(id, q.clone(), v), g);
            async move {
                match (id, q) {
                    (None, _) => Err(ApiError::NotFound("no such strategy".into())),
                    (_, Err(e)) => Err(ApiError::from(e)),
                    (Some(id), Ok(q)) => get_strategy(id, q, background).await,
                }
            }
        },
    );
    let me = Resource::new(|| (), |_| get_current_user());
    let last = LastGood::<(Option<i64>, Option<StepQuery>), StrategyView>::new();
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        if id.get_untracked().is_none() {
            r.set_status(http::StatusCode::NOT_FOUND);
        } else if query.get_untracked().is_err() {
            r.set_status(http::StatusCode::BAD_REQUEST);
        }
    }
    let title = move || match id.get() {
        Some(n) => format!("Strategy #{n}"),
        None => "Strategy".to_string(),
    };
    view! {
        <Title text=title/>
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <ol>
                <li><a href="/orchestration">"Orchestration"</a></li>
                <li aria-current="page">{title}</li>
            </ol>
        </nav>
        <Transition fallback=|| view! { <p class="loading">"Loading the strategy…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.ok().flatten().map(|u| u.role);
                let can_act = may_orchestrate(role);
                let q = query.get_untracked();
                let key = (id.get_untracked(), q.clone().ok());
                match (last.settle(key, data.await), q) {
                    (Shown::Fresh(v), Ok(q)) => {
                        view! { <StrategyBody v query=q can_act act stale=None/> }.into_any()
                    }
                    (Shown::Stale(v, e), Ok(q)) => {
                        view! { <StrategyBody v query=q can_act act stale=Some(e)/> }.into_any()
                    }
                    (Shown::Failed(e), _) => view! { <h1>{title()}</h1><ErrorPanel error=e/> }.into_any(),
                    (_, Err(e)) => view! { <h1>{title()}</h1><ErrorPanel error=e.into()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StrategyBody(
    v: StrategyView,
    query: StepQuery,
    can_act: bool,
    act: ServerAction<ActOnStrategy>,
    stale: Option<ApiError>,
) -> impl IntoView {
    let StrategyView { detail, steps } = v;
    let StrategyDetail {
        summary: s,
        spec,
        waves,
        counts,
        phases,
        failures,
        step_estimate_ms,
        actions,
        copy_of,
    } = detail;
    let id = s.id;
    let progress = Progress::of(&s);
    let eta = eta_text(&s);
    let per_site = format_duration(step_estimate_ms);
    let settings = settings_text(&spec);
    let wave_now = (!s.state.is_terminal() && s.wave_count > 0).then(|| {
        let current = (s.current_wave + 1).min(s.wave_count);
        format!("wave {current} of {}", s.wave_count)
    });
    let state_counts = StepState::ALL
        .iter()
        .map(|st| (*st, counts.get(*st)))
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| {
            let href = page_link(
                id,
                &StepQuery {
                    state: Some(st),
                    ..StepQuery::default()
                },
            );
            view! {
                <li data-step-state=st.as_str()>
                    <a href=href>
                        <Badge text=st.to_string() tone=step_tone(st)/>
                        <span class="count">{group_digits(n)}</span>
                    </a>
                </li>
            }
        })
        .collect_view();
    let wave_names: Vec<(u32, String)> = waves.iter().map(|w| (w.index, w.name.clone())).collect();
    let message = Signal::derive(move || match act.value().get() {
        Some(Ok(to)) => Some(Ok(action_done(to))),
        Some(Err(e)) => Some(Err(e)),
        None => None,
    });
    view! {
        <h1>
            {format!("Strategy #{id}: ")}
            <span class="strategy-type">{s.strategy_type.as_str()}</span>
        </h1>
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <section class="panel strategy-head" aria-labelledby="strategy-state-heading" data-state=s.state.as_str()>
            <h2 id="strategy-state-heading" class="visually-hidden">"State"</h2>
            <div class="strategy-state-line">
                <Badge text=s.state.to_string() tone=strategy_tone(s.state)/>
                {wave_now.map(|w| view! { <span class="muted">{w}</span> })}
                {eta.map(|e| view! { <span class="eta" data-eta="">{e}</span> })}
            </div>
            {copy_of.map(|c| view! {
                <p class="strategy-copy" data-copy-of=c.clone()>
                    {format!("Read-only copy: {c} runs this strategy; act on it there.")}
                </p>
            })}
            {(!s.reason.is_empty()).then(|| view! { <p class="strategy-reason" data-reason="">{s.reason.clone()}</p> })}
            <ProgressBar progress/>
            {(!counts.0.is_empty()).then(|| view! {
                <ul class="step-counts" aria-label="Steps by state">{state_counts}</ul>
            })}
            <dl class="props strategy-props">
                <dt>"Type"</dt>
                <dd>{format!("{} ({})", type_label(s.strategy_type), s.strategy_type)}</dd>
                <dt>"Target"</dt>
                <dd>{s.target.clone()}</dd>
                <dt>"Arguments"</dt>
                <dd>{if s.args.is_empty() { "—".to_string() } else { s.args.clone() }}</dd>
                <dt>"Settings"</dt>
                <dd>{settings}</dd>
                <dt>"Per site"</dt>
                <dd>{format!("about {per_site}")}</dd>
                <dt>"Created"</dt>
                <dd>
                    <time datetime=s.created_at.to_iso()>{s.created_at.to_iso()}</time>
                    {format!(" by {}", s.created_by)}
                </dd>
                <dt>"Started"</dt>
                <dd>{when(s.started_at, "not yet")}</dd>
                <dt>"Finished"</dt>
                <dd>{when(s.finished_at, "not yet")}</dd>
            </dl>
            {(can_act && !actions.is_empty()).then(|| view! {
                <Actions id actions query=query.clone() act/>
            })}
            <p class="form-status" role="status" aria-live="polite">
                {move || message.get().and_then(|m| m.ok()).map(|text| view! { <span class="form-ok">{text}</span> })}
            </p>
            {move || message.get().and_then(|m| m.err()).map(|e| view! { <ErrorPanel error=e/> })}
        </section>
        <section class="panel" aria-labelledby="waves-heading">
            <h2 id="waves-heading">{format!("Waves ({})", waves.len())}</h2>
            <WaveTable waves id/>
        </section>
        {(!phases.is_empty()).then(|| view! {
            <section class="panel" aria-labelledby="phases-heading">
                <h2 id="phases-heading">"Running steps by phase"</h2>
                <ul class="phase-counts">
                    {phases.into_iter().map(|(phase, n)| { let key = phase.clone(); view! {
                        <li data-phase=key>
                            <span class="phase">{phase}</span>
                            <span class="count">{group_digits(n)}</span>
                        </li>
                    }}).collect_view()}
                </ul>
            </section>
        })}
        {(!failures.is_empty()).then(|| view! {
            <section class="panel failures" aria-labelledby="failures-heading">
                <h2 id="failures-heading">"Latest failures"</h2>
                <StepTable rows=failures caption="Latest failures with their reasons".into()/>
            </section>
        })}
        <section class="panel" aria-labelledby="steps-heading">
            <h2 id="steps-heading">"Steps by site"</h2>
            <StepFilter id query=query.clone() waves=wave_names/>
            <StepList id steps query/>
        </section>
    }
}

/// One line of the strategy's settings that matter when watching it.
fn settings_text(spec: &engine::orchestration::NewStrategy) -> String {
    let mut parts = Vec::new();
    if let Some(a) = spec.apply_type {
        parts.push(format!("{a}"));
    }
    if let Some(n) = spec.max_parallel {
        parts.push(format!("max {n} in parallel"));
    }
    if let Some(c) = &spec.canary {
        parts.push(format!(
            "canary {} (soak {}, {} approval)",
            c.size,
            format_duration(i64::from(c.soak_secs) * 1000),
            c.approval
        ));
    }
    if let Some(b) = &spec.failure_budget {
        parts.push(format!(
            "failure budget {} then {}",
            b.max_failures, b.action
        ));
    }
    if spec.stop_on_failure {
        parts.push("stop on failure".into());
    }
    if spec.retries > 0 {
        parts.push(format!(
            "{} retries ({} s backoff)",
            spec.retries, spec.retry_backoff_secs
        ));
    }
    if spec.rollback {
        parts.push("roll back failures".into());
    }
    parts.push(format!("offline sites: {}", spec.offline_policy));
    if let Some(w) = spec.window {
        parts.push(format!("window {w}"));
    }
    parts.push(format!("step timeout {} s", spec.step_timeout_secs));
    parts.join("; ")
}

fn when(t: Option<engine::time::Millis>, none: &'static str) -> AnyView {
    match t {
        Some(t) => view! { <time datetime=t.to_iso()>{t.to_iso()}</time> }.into_any(),
        None => view! { <span class="muted">{none}</span> }.into_any(),
    }
}

/// The actions the strategy's state allows, as one server-function form (one button each).
#[component]
fn Actions(
    id: i64,
    actions: Vec<StrategyAction>,
    query: StepQuery,
    act: ServerAction<ActOnStrategy>,
) -> impl IntoView {
    let state = query
        .state
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let wave = query.wave.map(|w| w.to_string()).unwrap_or_default();
    let page = if query.page == 1 {
        String::new()
    } else {
        query.page.to_string()
    };
    let buttons = actions
        .into_iter()
        .map(|a| {
            let abort = a == StrategyAction::Abort;
            let class = match a {
                StrategyAction::Abort => "button-danger",
                StrategyAction::Apply | StrategyAction::Resume | StrategyAction::Approve => {
                    "button-primary"
                }
                StrategyAction::Pause => "button-secondary",
            };
            view! {
                <button
                    type="submit"
                    name="action"
                    value=a.as_str()
                    class=class
                    data-action=a.as_str()
                    on:click=move |ev| {
                        if abort && !confirm_abort(id) {
                            ev.prevent_default();
                        }
                    }
                >
                    {action_label(a)}
                </button>
            }
        })
        .collect_view();
    view! {
        <ActionForm action=act attr:class="strategy-actions" attr:aria-label="Strategy actions">
            <input type="hidden" name="id" value=id.to_string()/>
            <input type="hidden" name="state" value=state/>
            <input type="hidden" name="wave" value=wave/>
            <input type="hidden" name="page" value=page/>
            {buttons}
        </ActionForm>
    }
}

/// Asks before aborting (browser only; without JavaScript the button posts at once).
fn confirm_abort(id: i64) -> bool {
    #[cfg(feature = "hydrate")]
    {
        window()
            .confirm_with_message(&format!(
                "Abort strategy #{id}? Running steps finish, no new ones start. This cannot be undone."
            ))
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = id;
        true
    }
}

#[component]
fn WaveTable(waves: Vec<WaveView>, id: i64) -> impl IntoView {
    if waves.is_empty() {
        return view! { <p class="empty">"No waves."</p> }.into_any();
    }
    let rows = waves
        .into_iter()
        .map(|w| {
            let progress = Progress::of_counts(&w.counts);
            let href = page_link(
                id,
                &StepQuery {
                    wave: Some(w.index),
                    ..StepQuery::default()
                },
            );
            view! {
                <tr data-wave=w.index.to_string() data-wave-state=w.state.as_str()>
                    <td class="num">{(w.index + 1).to_string()}</td>
                    <th scope="row"><a href=href>{w.name}</a></th>
                    <td><Badge text=w.state.to_string() tone=wave_tone(w.state)/></td>
                    <td>{w.apply_type.as_str()}</td>
                    <td class="num">{group_digits(w.max_parallel.into())}</td>
                    <td class="num">{group_digits(w.sites)}</td>
                    <td class="progress-cell"><ProgressBar progress compact=true/></td>
                    <td>{when(w.soak_until, "—")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <TableScroll label="Waves">
            <table class="data waves">
                <caption class="visually-hidden">"Waves in the order they run"</caption>
                <thead>
                    <tr>
                        <th scope="col" class="num">"#"</th>
                        <th scope="col">"Wave"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Apply"</th>
                        <th scope="col" class="num">"Max parallel"</th>
                        <th scope="col" class="num">"Sites"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Soak until (UTC)"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </TableScroll>
    }
    .into_any()
}

/// The step filter: a GET form (in place after hydration, applied on change).
#[component]
fn StepFilter(id: i64, query: StepQuery, waves: Vec<(u32, String)>) -> impl IntoView {
    let state = query.state.map(|s| s.as_str()).unwrap_or("");
    let wave = query.wave;
    let action = format!("/orchestration/{id}");
    let per_page =
        (query.per_page != StepQuery::DEFAULT_PER_PAGE).then(|| query.per_page.to_string());
    view! {
        <Form method="GET" action=action.clone() attr:class="filters step-filters" attr:aria-label="Filter steps">
            <label class="filter" for="filter-step-state">
                <span>"State"</span>
                <select id="filter-step-state" name="state" on:change=submit_enclosing_form>
                    <option value="" selected=state.is_empty()>"Any"</option>
                    {StepState::ALL
                        .iter()
                        .map(|s| view! { <option value=s.as_str() selected=s.as_str() == state>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="filter" for="filter-step-wave">
                <span>"Wave"</span>
                <select id="filter-step-wave" name="wave" on:change=submit_enclosing_form>
                    <option value="" selected=wave.is_none()>"Any"</option>
                    {waves
                        .into_iter()
                        .map(|(i, name)| {
                            view! {
                                <option value=i.to_string() selected=wave == Some(i)>
                                    {format!("{} · {name}", i + 1)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            {per_page.map(|n| view! { <input type="hidden" name="per_page" value=n/> })}
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <a href=action class="button-link">"Clear"</a>
            </div>
        </Form>
    }
}

#[component]
fn StepList(id: i64, steps: engine::orchestration::StepPage, query: StepQuery) -> impl IntoView {
    let pages = u32::try_from(steps.matching.div_ceil(u64::from(steps.per_page.max(1))))
        .unwrap_or(u32::MAX)
        .max(1);
    let summary = page_summary(
        "steps",
        steps.page,
        steps.per_page,
        steps.rows.len(),
        steps.matching,
    );
    let link = move |p: u32| {
        page_link(
            id,
            &StepQuery {
                page: p,
                ..query.clone()
            },
        )
    };
    let empty = steps.rows.is_empty();
    view! {
        <p class="result-count" role="status" data-matching=steps.matching>{summary.clone()}</p>
        {if empty {
            view! { <p class="empty">"No steps match this filter."</p> }.into_any()
        } else {
            view! { <StepTable rows=steps.rows caption=summary/> }.into_any()
        }}
        {pager(steps.page, pages, link)}
    }
}

#[component]
fn StepTable(rows: Vec<StepRow>, caption: String) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|r| {
            let href = format!("/subclouds/{}", r.subcloud);
            let phase = if r.phase.is_empty() {
                "—".to_string()
            } else {
                r.phase.clone()
            };
            view! {
                <tr data-step=r.subcloud.clone() data-step-state=r.state.as_str()>
                    <th scope="row"><a href=href>{r.subcloud.clone()}</a></th>
                    <td class="num">{(r.wave + 1).to_string()}</td>
                    <td><Badge text=r.state.to_string() tone=step_tone(r.state)/></td>
                    <td>{phase}</td>
                    <td class="num">{format!("{} %", r.percent)}</td>
                    <td class="num">{r.attempt.to_string()}</td>
                    <td class="details">{r.details.clone()}</td>
                    <td>{when(r.started_at, "—")}</td>
                    <td>{when(r.finished_at, "—")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="data steps">
                <caption class="visually-hidden">{caption}</caption>
                <thead>
                    <tr>
                        <th scope="col">"Subcloud"</th>
                        <th scope="col" class="num">"Wave"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Phase"</th>
                        <th scope="col" class="num">"Done"</th>
                        <th scope="col" class="num">"Attempt"</th>
                        <th scope="col">"Details"</th>
                        <th scope="col">"Started (UTC)"</th>
                        <th scope="col">"Finished (UTC)"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_filters_parse_and_links_keep_them() {
        let mut m = ParamsMap::new();
        m.insert("state", "rolling back".into());
        m.insert("wave", "2".into());
        let q = parse_query(&m).unwrap();
        assert_eq!(q.state, Some(StepState::RollingBack));
        assert_eq!(
            page_link(7, &StepQuery { page: 3, ..q }),
            "/orchestration/7?state=rolling%20back&wave=2&page=3"
        );
        assert_eq!(page_link(7, &StepQuery::default()), "/orchestration/7");
        let mut bad = ParamsMap::new();
        bad.insert("state", "sideways".into());
        assert_eq!(parse_query(&bad).unwrap_err().field, "state");
    }

    #[test]
    fn action_messages() {
        assert_eq!(
            action_done(StrategyState::Applying),
            "Done: the strategy is now applying."
        );
    }
}
