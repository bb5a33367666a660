//! The strategy list: active strategies first, then the past ones, newest first; paged in the
//! URL (`page`, `per_page`), refreshed in place by live updates.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{eta_text, get_strategies, strategy_tone, type_label, Progress, ProgressBar};
use crate::auth::get_current_user;
use crate::components::{page_summary, pager, Badge, ErrorPanel};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::auth::{Permission, Role};
use engine::orchestration::StrategyPage;
use engine::ValidationError;

const DEFAULT_PER_PAGE: u32 = 25;
const MAX_PER_PAGE: u32 = 200;

type Paging = Result<(u32, u32), ValidationError>;

fn parse_paging(m: &leptos_router::params::ParamsMap) -> Paging {
    let number = |key: &str, default: u32| -> Result<u32, ValidationError> {
        match m.get(key).filter(|v| !v.trim().is_empty()) {
            Some(v) => ValidationError::whole_number(key, v.trim()),
            None => Ok(default),
        }
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", DEFAULT_PER_PAGE)?;
    ValidationError::paging(page, per_page, 1_000_000, MAX_PER_PAGE)?;
    Ok((page, per_page))
}

/// Whether a role may create strategies and act on them.
pub(super) fn may_orchestrate(role: Option<Role>) -> bool {
    role.is_some_and(|r| r.allows(Permission::Orchestrate))
}

#[component]
pub fn StrategiesPage() -> impl IntoView {
    let params = use_query_map();
    let paging: Memo<Paging> = Memo::new(move |_| params.with(parse_paging));
    let live = use_live();
    let refresh = Refresh::<Paging>::new();
    let list = Resource::new(
        move || (paging.get(), live.generation.get()),
        move |(p, g)| {
            let background = refresh.is_background(&p, g);
            async move {
                match p {
                    Ok((page, per_page)) => get_strategies(page, per_page, background).await,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
        },
    );
    let me = Resource::new(|| (), |_| get_current_user());
    let last = LastGood::<Option<(u32, u32)>, StrategyPage>::new();
    #[cfg(feature = "ssr")]
    if paging.get_untracked().is_err() {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(http::StatusCode::BAD_REQUEST);
        }
    }
    view! {
        <Title text="Orchestration"/>
        <div class="page-head">
            <h1>"Orchestration"</h1>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let role = me.await.ok().flatten().map(|u| u.role);
                    may_orchestrate(role).then(|| view! {
                        <a class="button-link button-primary" href="/orchestration/new">"New strategy"</a>
                    })
                })}
            </Transition>
        </div>
        <p class="lead">
            "Rollout strategies over the fleet: software deploys, Kubernetes upgrades, root CA updates, firmware and prestaging, in waves."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading strategies…"</p> }>
            {move || Suspend::new(async move {
                let p = paging.get_untracked();
                match (last.settle(p.clone().ok(), list.await), p) {
                    (Shown::Fresh(l), Ok(_)) => view! { <StrategyTable list=l stale=None/> }.into_any(),
                    (Shown::Stale(l, e), Ok(_)) => view! { <StrategyTable list=l stale=Some(e)/> }.into_any(),
                    (Shown::Failed(e), _) => view! { <ErrorPanel error=e/> }.into_any(),
                    (_, Err(e)) => view! { <ErrorPanel error=e.into()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StrategyTable(list: StrategyPage, stale: Option<ApiError>) -> impl IntoView {
    let per_page = list.per_page;
    let pages = u32::try_from(list.matching.div_ceil(u64::from(per_page.max(1))))
        .unwrap_or(u32::MAX)
        .max(1);
    let summary = page_summary(
        "strategies",
        list.page,
        per_page,
        list.items.len(),
        list.matching,
    );
    let link = move |p: u32| {
        let mut parts = Vec::new();
        if p != 1 {
            parts.push(format!("page={p}"));
        }
        if per_page != DEFAULT_PER_PAGE {
            parts.push(format!("per_page={per_page}"));
        }
        if parts.is_empty() {
            "/orchestration".to_string()
        } else {
            format!("/orchestration?{}", parts.join("&"))
        }
    };
    let empty = list.items.is_empty() && list.matching == 0;
    let rows = list
        .items
        .into_iter()
        .map(|s| {
            let href = format!("/orchestration/{}", s.id);
            let eta = eta_text(&s);
            let args = if s.args.is_empty() {
                "—".to_string()
            } else {
                s.args.clone()
            };
            view! {
                <tr data-strategy=s.id.to_string() data-state=s.state.as_str() data-type=s.strategy_type.as_str()>
                    <th scope="row"><a href=href>{format!("#{}", s.id)}</a></th>
                    <td>
                        <span class="strategy-type">{s.strategy_type.as_str()}</span>
                        <span class="visually-hidden">{format!(" ({})", type_label(s.strategy_type))}</span>
                    </td>
                    <td class="target">{s.target.clone()}</td>
                    <td>{args}</td>
                    <td><Badge text=s.state.to_string() tone=strategy_tone(s.state)/></td>
                    <td class="progress-cell"><ProgressBar progress=Progress::of(&s) compact=true/></td>
                    <td class="eta">{eta.unwrap_or_else(|| "—".into())}</td>
                    <td>{s.created_by.clone()}</td>
                    <td><time datetime=s.created_at.to_iso()>{s.created_at.to_iso()}</time></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        {if empty {
            view! {
                <p class="empty">"No strategies yet."</p>
            }
            .into_any()
        } else {
            view! {
                <p class="result-count" role="status" data-matching=list.matching>{summary.clone()}</p>
                <div class="table-scroll">
                    <table class="data strategies">
                        <caption class="visually-hidden">{summary}</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Strategy"</th>
                                <th scope="col">"Type"</th>
                                <th scope="col">"Target"</th>
                                <th scope="col">"Arguments"</th>
                                <th scope="col">"State"</th>
                                <th scope="col">"Progress"</th>
                                <th scope="col">"Time"</th>
                                <th scope="col">"Created by"</th>
                                <th scope="col">"Created (UTC)"</th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                {pager(list.page, pages, link)}
            }
            .into_any()
        }}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leptos_router::params::ParamsMap;

    #[test]
    fn paging_parses_and_refuses() {
        assert_eq!(
            parse_paging(&ParamsMap::new()).unwrap(),
            (1, DEFAULT_PER_PAGE)
        );
        let mut m = ParamsMap::new();
        m.insert("page", "3".into());
        m.insert("per_page", "10".into());
        assert_eq!(parse_paging(&m).unwrap(), (3, 10));
        let mut bad = ParamsMap::new();
        bad.insert("page", "0".into());
        assert_eq!(parse_paging(&bad).unwrap_err().field, "page");
        let mut bad = ParamsMap::new();
        bad.insert("per_page", "x".into());
        assert_eq!(parse_paging(&bad).unwrap_err().field, "per_page");
    }
}
