//! One's own account: change password, create and revoke API tokens.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    action_message, get_api_tokens, ChangePassword, CreateApiToken, FormStatus, RevokeApiToken,
};
use crate::components::ErrorPanel;

#[component]
pub fn AccountPage() -> impl IntoView {
    let password = ServerAction::<ChangePassword>::new();
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| get_api_tokens(),
    );
    let password_msg = Signal::derive(move || {
        action_message(
            password.value().get(),
            "Password changed; your other sessions were ended.",
        )
    });
    let revoke_msg = Signal::derive(move || action_message(revoke.value().get(), "Token revoked."));
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    view! {
        <Title text="Account"/>
        <h1>"Your account"</h1>
        <div class="panels">
            <section class="panel" aria-labelledby="password-heading">
                <h2 id="password-heading">"Change password"</h2>
                <ActionForm action=password attr:class="stacked-form">
                    <label for="pw-current">"Current password"</label>
                    <input id="pw-current" name="current" type="password" required autocomplete="current-password" maxlength="1024"/>
                    <label for="pw-new">"New password (at least 12 characters)"</label>
                    <input id="pw-new" name="password" type="password" required minlength="12" maxlength="256" autocomplete="new-password"/>
                    <label for="pw-confirm">"New password again"</label>
                    <input id="pw-confirm" name="confirm" type="password" required minlength="12" maxlength="256" autocomplete="new-password"/>
                    <button type="submit">"Change password"</button>
                </ActionForm>
                <FormStatus message=password_msg/>
            </section>
            <section class="panel" aria-labelledby="tokens-heading">
                <h2 id="tokens-heading">"API tokens"</h2>
                <p>"Scripts send a token as " <code>"Authorization: Bearer …"</code> " to " <code>"/api/v1"</code> "; it carries your role."</p>
                // The secret is shown once, in this page, from the action's answer; a plain form
                // post (no JavaScript) would create a token nobody can see. So the button works
                // only once the page is interactive.
                <ActionForm action=create attr:class="inline-form">
                    <label>"Token name" <input name="name" required maxlength="64" placeholder="e.g. grafana"/></label>
                    <button type="submit" disabled=move || !interactive.get()>"Create token"</button>
                </ActionForm>
                <noscript><p class="notice">"Creating a token needs JavaScript: its secret is shown once, on this page."</p></noscript>
                {move || create.value().get().map(|r| match r {
                    Ok(t) => view! {
                        <div class="notice" role="status">
                            <p>"Copy this token now; it will not be shown again."</p>
                            <code class="secret" data-token-secret="">{t.secret}</code>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
                <FormStatus message=revoke_msg/>
                <Transition fallback=|| view! { <p class="loading">"Loading tokens…"</p> }>
                    {move || Suspend::new(async move {
                        match tokens.await {
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <p class="empty">"No tokens."</p> }.into_any(),
                            Ok(list) => view! {
                                <table class="data tokens">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Name"</th>
                                            <th scope="col">"Starts with"</th>
                                            <th scope="col">"Created"</th>
                                            <th scope="col">"Last used"</th>
                                            <th scope="col">"State"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list.into_iter().map(|t| {
                                            let id = t.id.to_string();
                                            view! {
                                                <tr data-token=t.name.clone()>
                                                    <th scope="row">{t.name.clone()}</th>
                                                    <td><code>{format!("{}…", t.prefix)}</code></td>
                                                    <td>{t.created_at.to_iso()}</td>
                                                    <td>{t.last_used_at.map(|x| x.to_iso()).unwrap_or_else(|| "never".into())}</td>
                                                    <td>
                                                        {match t.revoked_at {
                                                            Some(r) => view! { <span>{format!("revoked {}", r.to_iso())}</span> }.into_any(),
                                                            None => view! {
                                                                <ActionForm action=revoke attr:class="inline-form">
                                                                    <input type="hidden" name="id" value=id/>
                                                                    <button type="submit">"Revoke"</button>
                                                                </ActionForm>
                                                            }.into_any(),
                                                        }}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </div>
    }
}
