//! The audit log (admins and operators): who changed what, when, from where, and how it
//! ended. Filters live in the URL like the subcloud list's.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::get_audit_page;
use crate::components::{group_digits, ErrorPanel, TableScroll};
use crate::ApiError;
use engine::audit::AuditQuery;

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|m| {
            let pairs = crate::components::query_pairs(m, &AuditQuery::PARAMS);
            AuditQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        })
    });
    let page = Resource::new(
        move || query.get(),
        |q| async move {
            match q {
                Ok(q) => get_audit_page(q).await,
                Err(e) => Err(ApiError::from(e)),
            }
        },
    );
    let raw = move |k: &'static str| params.with(|m| m.get(k)).unwrap_or_default();
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <Form method="GET" action="/audit" attr:class="filters" attr:aria-label="Filter the audit log">
            <label class="filter" for="audit-actor"><span>"User"</span>
                <input id="audit-actor" name="actor" maxlength="128" prop:value=move || raw("actor") value=move || raw("actor")/></label>
            <label class="filter" for="audit-action"><span>"Action (e.g. user. or auth.login)"</span>
                <input id="audit-action" name="action" maxlength="128" prop:value=move || raw("action") value=move || raw("action")/></label>
            <label class="filter" for="audit-target"><span>"Target contains"</span>
                <input id="audit-target" name="target" maxlength="128" prop:value=move || raw("target") value=move || raw("target")/></label>
            <label class="filter" for="audit-from"><span>"From (UTC)"</span>
                <input id="audit-from" name="from" type="date" prop:value=move || raw("from") value=move || raw("from")/></label>
            <label class="filter" for="audit-to"><span>"To (UTC)"</span>
                <input id="audit-to" name="to" type="date" prop:value=move || raw("to") value=move || raw("to")/></label>
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <a href="/audit" class="button-link">"Clear"</a>
            </div>
        </Form>
        <Transition fallback=|| view! { <p class="loading">"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                match (page.await, query.get_untracked()) {
                    (Err(e), _) => view! { <ErrorPanel error=e/> }.into_any(),
                    (Ok(p), q) => {
                        let q = q.unwrap_or_default();
                        let pages = u64::from(engine::paging::page_count(p.matching, p.per_page));
                        let link = move |n: u32| format!("/audit{}", AuditQuery { page: n, ..q.clone() }.to_query_string());
                        view! {
                            <p class="result-count" role="status" data-matching=p.matching>
                                {format!("{} entries", group_digits(p.matching))}
                            </p>
                            <TableScroll label="Audit log entries">
                                <table class="data audit">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Time (UTC)"</th>
                                            <th scope="col">"User"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"Action"</th>
                                            <th scope="col">"Target"</th>
                                            <th scope="col">"Change"</th>
                                            <th scope="col">"From"</th>
                                            <th scope="col">"Outcome"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {p.rows.into_iter().map(|r| {
                                            let action_attr = r.entry.action.clone();
                                            view! {
                                            <tr data-audit-action=action_attr>
                                                <td><time datetime=r.at.to_iso()>{r.at.to_iso()}</time></td>
                                                <td>{r.entry.actor}</td>
                                                <td>{r.entry.role}</td>
                                                <td>{r.entry.action}</td>
                                                <td>{r.entry.target}</td>
                                                <td>{r.entry.summary}</td>
                                                <td>{r.entry.client_addr.unwrap_or_default()}</td>
                                                <td>{r.entry.outcome}</td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                            </TableScroll>
                            <nav class="pager" aria-label="Pages">
                                {(p.page > 1).then(|| view! { <a href=link(p.page - 1) rel="prev">"‹ Newer"</a> })}
                                <span class="pager-pos">{format!("Page {} of {}", p.page, group_digits(pages))}</span>
                                {(u64::from(p.page) < pages).then(|| view! { <a href=link(p.page + 1) rel="next">"Older ›"</a> })}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
