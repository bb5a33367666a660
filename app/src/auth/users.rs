//! Users (admins): create, change role, disable or enable, reset a password. Every form is
//! a server-function form: it posts without JavaScript and updates in place with it.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    action_message, get_users, CreateUser, FormStatus, ResetPassword, SetUserDisabled, SetUserRole,
};
use crate::components::{Badge, ErrorPanel, Tone};
use engine::auth::Role;

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let role = ServerAction::<SetUserRole>::new();
    let disable = ServerAction::<SetUserDisabled>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                role.version().get(),
                disable.version().get(),
                reset.version().get(),
            )
        },
        |_| get_users(),
    );
    let create_msg = Signal::derive(move || action_message(create.value().get(), "User created."));
    let change_msg = Signal::derive(move || {
        action_message(role.value().get(), "Role changed.")
            .or_else(|| action_message(disable.value().get(), "User updated."))
            .or_else(|| {
                action_message(
                    reset.value().get(),
                    "Password reset; the user's sessions were ended.",
                )
            })
    });
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        // Only admins get the list; for anyone else the page is just the refusal.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                users.await.is_ok().then(|| view! {
        <section class="panel" aria-labelledby="new-user-heading">
                        <h2 id="new-user-heading">"New user"</h2>
                        <ActionForm action=create attr:class="inline-form">
                            <label>"User name" <input name="username" required maxlength="64" autocomplete="off"/></label>
                            <label>"Password" <input name="password" type="password" required minlength="12" maxlength="256" autocomplete="new-password"/></label>
                            <label>"Role"
                                <select name="role">
                                    {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == Role::Viewer>{r.as_str()}</option> }).collect_view()}
                                </select>
                            </label>
                            <button type="submit">"Create"</button>
                        </ActionForm>
                        <FormStatus message=create_msg/>
                    </section>

                })
            })}
        </Transition>
        <section class="panel" aria-labelledby="users-heading">
            <h2 id="users-heading">"All users"</h2>
            <FormStatus message=change_msg/>
            <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-scroll">
                                <table class="data users">
                                    <thead>
                                        <tr>
                                            <th scope="col">"User"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"State"</th>
                                            <th scope="col">"Last sign-in"</th>
                                            <th scope="col">"Actions"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list.into_iter().map(|u| {
                                            let key = u.name.clone();
                                            let (state, tone) = if u.disabled { ("disabled", Tone::Critical) } else { ("enabled", Tone::Ok) };
                                            let name_for_role = u.name.clone();
                                            let name_for_disable = u.name.clone();
                                            let name_for_reset = u.name.clone();
                                            let current_role = u.role;
                                            let role_id = format!("role-{}", u.name);
                                            let role_id_for = role_id.clone();
                                            let pw_id = format!("pw-{}", u.name);
                                            let pw_id_for = pw_id.clone();
                                            view! {
                                                <tr data-user=key>
                                                    <th scope="row">{u.name.clone()}</th>
                                                    <td>{u.role.as_str()}</td>
                                                    <td><Badge text=state tone/></td>
                                                    <td>{u.last_login_at.map(|t| t.to_iso()).unwrap_or_else(|| "never".into())}</td>
                                                    <td class="row-actions">
                                                        <ActionForm action=role attr:class="inline-form">
                                                            <input type="hidden" name="username" value=name_for_role/>
                                                            <label class="visually-hidden" for=role_id_for>"Role"</label>
                                                            <select name="role" id=role_id>
                                                                {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == current_role>{r.as_str()}</option> }).collect_view()}
                                                            </select>
                                                            <button type="submit">"Set role"</button>
                                                        </ActionForm>
                                                        <ActionForm action=disable attr:class="inline-form">
                                                            <input type="hidden" name="username" value=name_for_disable/>
                                                            <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                                            <button type="submit">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                                        </ActionForm>
                                                        <ActionForm action=reset attr:class="inline-form">
                                                            <input type="hidden" name="username" value=name_for_reset/>
                                                            <label class="visually-hidden" for=pw_id_for>"New password"</label>
                                                            <input id=pw_id name="password" type="password" required minlength="12" maxlength="256" placeholder="new password" autocomplete="new-password"/>
                                                            <button type="submit">"Reset password"</button>
                                                        </ActionForm>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
