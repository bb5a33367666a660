//! The page frame: skip link, header with navigation, main landmark; and the 404 page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::auth::get_current_user;
use crate::live::LiveIndicator;
use engine::auth::Role;

/// Header, navigation and the main content area around every page.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let location = use_location();
    let current = move |prefix: &'static str| {
        let path = location.pathname.get();
        let here = if prefix == "/" {
            path == "/"
        } else {
            path.starts_with(prefix)
        };
        here.then_some("page")
    };
    // Marks the document once the browser bundle has taken over; tests and scripts wait on it.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    let me = Resource::new(|| (), |_| get_current_user());
    // Live updates need a session: the stream opens once someone is known to be signed in.
    Effect::new(move |_| {
        if let Some(Ok(Some(_))) = me.get() {
            crate::live::start();
        }
    });
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"◢◤"</span>
                "Murmuration"
            </a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let user = me.await.ok().flatten();
                    user.map(|u| {
                        let admin = u.role == Role::Admin;
                        let audit = matches!(u.role, Role::Admin | Role::Operator);
                        view! {
                            <nav aria-label="Main">
                                <ul>
                                    <li><a href="/" aria-current=move || current("/")>"Overview"</a></li>
                                    <li><a href="/subclouds" aria-current=move || current("/subclouds")>"Subclouds"</a></li>
                                    <li><a href="/alarms" aria-current=move || current("/alarms")>"Alarms"</a></li>
                                    <li><a href="/orchestration" aria-current=move || current("/orchestration")>"Orchestration"</a></li>
                                    <li><a href="/controllers" aria-current=move || current("/controllers")>"Controllers"</a></li>
                                    <li><a href="/peer-groups" aria-current=move || current("/peer-groups")>"Peer groups"</a></li>
                                    <li><a href="/drill" aria-current=move || current("/drill")>"Drill"</a></li>
                                    {audit.then(|| view! { <li><a href="/audit" aria-current=move || current("/audit")>"Audit"</a></li> })}
                                    {admin.then(|| view! { <li><a href="/users" aria-current=move || current("/users")>"Users"</a></li> })}
                                </ul>
                            </nav>
                            <div class="user-menu">
                                <LiveIndicator/>
                                <a href="/account" class="user-name" aria-current=move || current("/account") data-user-role=u.role.as_str()>
                                    {u.name.clone()} <span class="role">{format!("({})", u.role)}</span>
                                </a>
                                // A real form: signing out works without JavaScript and is a POST
                                // (a GET could be triggered by any page).
                                <form method="post" action="/logout" rel="external" class="logout-form">
                                    <button type="submit">"Sign out"</button>
                                </form>
                            </div>
                        }
                    })
                })}
            </Transition>
        </header>
        <main id="main" tabindex="-1">
            {children()}
        </main>
    }
}

/// Shown for any path without a page.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        r.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Go to the overview"</a> "."</p>
    }
}
