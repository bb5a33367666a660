//! `/embeds` (admins): create and revoke embed links, and keep the list of portal origins
//! allowed to frame them. Every form works without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    get_embed_settings, AddEmbedOrigin, CreateEmbedLink, EmbedSettings, RemoveEmbedOrigin,
    RevokeEmbedLink,
};
use crate::auth::{action_message, FormStatus};
use crate::components::{Badge, ErrorPanel, Tone};
use engine::embeds::{EmbedKind, EmbedLink, EmbedLinkState};

fn state_tone(s: EmbedLinkState) -> Tone {
    match s {
        EmbedLinkState::Active => Tone::Ok,
        EmbedLinkState::Expired => Tone::Neutral,
        EmbedLinkState::Revoked => Tone::Warning,
    }
}

#[component]
pub fn EmbedsPage() -> impl IntoView {
    let create = ServerAction::<CreateEmbedLink>::new();
    let revoke = ServerAction::<RevokeEmbedLink>::new();
    let add = ServerAction::<AddEmbedOrigin>::new();
    let remove = ServerAction::<RemoveEmbedOrigin>::new();
    let settings = Resource::new(
        move || {
            (
                create.version().get(),
                revoke.version().get(),
                add.version().get(),
                remove.version().get(),
            )
        },
        |_| get_embed_settings(),
    );
    let create_msg = Signal::derive(move || {
        action_message(
            create.value().get(),
            "Link created; it is at the top of the list.",
        )
    });
    let revoke_msg = Signal::derive(move || action_message(revoke.value().get(), "Link revoked."));
    let origin_msg = Signal::derive(move || {
        action_message(add.value().get(), "Origin added.")
            .or_else(|| action_message(remove.value().get(), "Origin removed."))
    });
    let kinds = EmbedKind::ALL
        .iter()
        .map(|k| view! { <option value=k.as_str()>{k.describe()}</option> })
        .collect_view();
    view! {
        <Title text="Portal embeds"/>
        <h1>"Portal embeds"</h1>
        <p>
            "Read-only views for NOC portals to show in an iframe, without signing in. Each link "
            "opens one view until it expires or is revoked; only the origins listed below may frame it."
        </p>
        <div class="panels">
            <section class="panel" aria-labelledby="embed-new-heading">
                <h2 id="embed-new-heading">"New embed link"</h2>
                <ActionForm action=create attr:class="stacked-form" attr:id="embed-create">
                    <label for="embed-kind">"View"</label>
                    <select id="embed-kind" name="kind">{kinds}</select>
                    <label for="embed-target">"Target"</label>
                    <input id="embed-target" name="target" maxlength="500" aria-describedby="embed-target-help"/>
                    <p id="embed-target-help" class="muted">
                        "Strategy: its number. Peer group: its name. Map: the view's URL parameters "
                        "(e.g. " <code>"region=europe&status=offline"</code> "), or empty for the whole world. "
                        "Status summary: empty."
                    </p>
                    <label for="embed-label">"What it is for"</label>
                    <input id="embed-label" name="label" required maxlength="80" placeholder="e.g. Portal front page"/>
                    <label for="embed-expires">"Valid for"</label>
                    <div class="inline-fields">
                        <input id="embed-expires" name="expires_in" type="number" min="1" value="30" required/>
                        <select name="unit" aria-label="Unit">
                            <option value="minutes">"minutes"</option>
                            <option value="hours">"hours"</option>
                            <option value="days" selected>"days"</option>
                        </select>
                    </div>
                    <button type="submit">"Create link"</button>
                </ActionForm>
                <FormStatus message=create_msg/>
            </section>
            <section class="panel" aria-labelledby="embed-origins-heading">
                <h2 id="embed-origins-heading">"Portals allowed to frame embeds"</h2>
                <p class="muted">
                    "Sent as " <code>"Content-Security-Policy: frame-ancestors"</code>
                    ". A portal not listed here shows nothing."
                </p>
                <ActionForm action=add attr:class="inline-form" attr:id="embed-origin-add">
                    <label for="embed-origin">"Origin"</label>
                    <input id="embed-origin" name="origin" required maxlength="200" placeholder="https://portal.example.com"/>
                    <button type="submit">"Allow"</button>
                </ActionForm>
                <FormStatus message=origin_msg/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        settings.await.ok().map(|s| view! { <OriginList origins=s.origins remove/> })
                    })}
                </Transition>
            </section>
        </div>
        <section class="panel" aria-labelledby="embed-links-heading">
            <h2 id="embed-links-heading">"Links"</h2>
            <FormStatus message=revoke_msg/>
            <Transition fallback=|| view! { <p class="loading">"Loading links…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(s) => view! { <LinkTable s revoke/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn OriginList(origins: Vec<String>, remove: ServerAction<RemoveEmbedOrigin>) -> impl IntoView {
    if origins.is_empty() {
        return view! { <p class="empty" data-origins="">"No portal may frame embeds yet."</p> }
            .into_any();
    }
    let items = origins
        .into_iter()
        .map(|o| {
            let label = format!("Remove {o}");
            let (shown, field) = (o.clone(), o.clone());
            view! {
                <li data-origin=o>
                    <code>{shown}</code>
                    <ActionForm action=remove attr:class="inline-form">
                        <input type="hidden" name="origin" value=field/>
                        <button type="submit" aria-label=label>"Remove"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="origin-list" data-origins="">{items}</ul> }.into_any()
}

#[component]
fn LinkTable(s: EmbedSettings, revoke: ServerAction<RevokeEmbedLink>) -> impl IntoView {
    if s.links.is_empty() {
        return view! { <p class="empty">"No embed links yet."</p> }.into_any();
    }
    let origin = s.public_origin;
    let rows = s
        .links
        .into_iter()
        .map(|l: EmbedLink| {
            let url = format!("{origin}{}", l.path);
            let id = l.id.to_string();
            let revoke_label = format!("Revoke \u{201c}{}\u{201d}", l.label);
            let target = if l.target.is_empty() {
                "—".to_string()
            } else {
                l.target.clone()
            };
            view! {
                <tr data-embed=l.id.to_string() data-state=l.state.as_str()>
                    <th scope="row">{l.label.clone()}</th>
                    <td>{l.kind.describe()}</td>
                    <td>{target}</td>
                    <td><Badge text=l.state.as_str().to_string() tone=state_tone(l.state)/></td>
                    <td>{l.expires_at.to_iso()}</td>
                    <td>{format!("{}, {}", l.created_by, l.created_at.to_iso())}</td>
                    <td class="embed-url">
                        {(l.state == EmbedLinkState::Active).then(|| view! {
                            <code data-embed-url="">{url.clone()}</code>
                        })}
                    </td>
                    <td>
                        {(l.state == EmbedLinkState::Active).then(|| view! {
                            <ActionForm action=revoke attr:class="inline-form">
                                <input type="hidden" name="id" value=id/>
                                <button type="submit" aria-label=revoke_label>"Revoke"</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="data embed-links">
                <thead>
                    <tr>
                        <th scope="col">"For"</th>
                        <th scope="col">"View"</th>
                        <th scope="col">"Target"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Address"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
