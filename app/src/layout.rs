//! The page frame: skip link, header with navigation, main landmark; and the 404 page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};

use crate::auth::get_current_user;
use crate::live::LiveIndicator;
use engine::auth::Role;

/// The colour theme this page was rendered with (`light`, `dark`, or `None`: the system's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme(pub Option<String>);

pub fn provide_theme(theme: Option<String>) {
    provide_context(Theme(theme));
}

/// Switches system → dark → light → system with a plain form post (works without
/// JavaScript; the server sets a cookie and sends the browser back to this page).
#[component]
fn ThemeToggle() -> impl IntoView {
    let location = use_location();
    let current = use_context::<Theme>().and_then(|t| t.0);
    let (now, next, icon) = match current.as_deref() {
        Some("dark") => ("dark", "light", "☾"),
        Some("light") => ("light", "system", "☀"),
        _ => ("the system's", "dark", "◐"),
    };
    let here = move || {
        let search = location.search.get();
        let search = search.trim_start_matches('?');
        if search.is_empty() {
            location.pathname.get()
        } else {
            format!("{}?{search}", location.pathname.get())
        }
    };
    let label = format!("Colour theme: {now}. Switch to {next}");
    view! {
        <form method="post" action="/theme" class="theme-form">
            <input type="hidden" name="theme" value=next/>
            <input type="hidden" name="back" value=here/>
            <button type="submit" class="theme-toggle" aria-label=label.clone() title=label data-theme-next=next>
                <span aria-hidden="true">{icon}</span>
            </button>
        </form>
    }
}

/// Marks the document once the browser bundle has taken over; tests and scripts wait on it.
fn mark_hydrated() {
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// Header, navigation and the main content area around every page.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let location = use_location();
    // A portal's iframe: the view alone, no header, no session, nothing to sign in to.
    if location.pathname.get_untracked().starts_with("/embed/") {
        return view! { <EmbedFrame children/> }.into_any();
    }
    let current = move |prefix: &'static str| {
        let path = location.pathname.get();
        let here = if prefix == "/" {
            path == "/"
        } else {
            path.starts_with(prefix)
        };
        here.then_some("page")
    };
    mark_hydrated();
    let me = Resource::new(|| (), |_| get_current_user());
    // Wall screens: `?kiosk` on any page (see crate::kiosk).
    let query = use_query_map();
    let kiosk = Memo::new(move |_| query.with(|q| q.get("kiosk").is_some()));
    let rotation = move || {
        query.with(|q| {
            crate::kiosk::rotation(
                &location.pathname.get(),
                q.get("playlist").as_deref(),
                q.get("every").as_deref(),
            )
        })
    };
    // Live updates need a session: the stream opens once someone is known to be signed in.
    Effect::new(move |_| {
        if let Some(Ok(Some(_))) = me.get() {
            crate::live::start();
        }
    });
    view! {
        {move || kiosk.get().then(|| view! { <crate::kiosk::KioskBar rotation=rotation()/> })}
        // Outside the router (rel="external"): the browser moves the focus to #main itself.
        <a class="skip-link" class:kiosk-hidden=move || kiosk.get() href="#main" rel="external">"Skip to content"</a>
        <header class="topbar" class:kiosk-hidden=move || kiosk.get()>
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
                                    <li><a href="/status" aria-current=move || current("/status")>"Status"</a></li>
                                    <li><a href="/subclouds" aria-current=move || current("/subclouds")>"Subclouds"</a></li>
                                    <li><a href="/map" aria-current=move || current("/map")>"Map"</a></li>
                                    <li><a href="/alarms" aria-current=move || current("/alarms")>"Alarms"</a></li>
                                    <li><a href="/orchestration" aria-current=move || current("/orchestration")>"Orchestration"</a></li>
                                    <li><a href="/controllers" aria-current=move || current("/controllers")>"Controllers"</a></li>
                                    <li><a href="/peer-groups" aria-current=move || current("/peer-groups")>"Peer groups"</a></li>
                                    <li><a href="/drill" aria-current=move || current("/drill")>"Drill"</a></li>
                                    {audit.then(|| view! { <li><a href="/audit" aria-current=move || current("/audit")>"Audit"</a></li> })}
                                    {admin.then(|| view! { <li><a href="/users" aria-current=move || current("/users")>"Users"</a></li> })}
                                    {admin.then(|| view! { <li><a href="/embeds" aria-current=move || current("/embeds")>"Embeds"</a></li> })}
                                </ul>
                            </nav>
                            <div class="user-menu">
                                <LiveIndicator/>
                                <ThemeToggle/>
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
        <main id="main" tabindex="-1" class:kiosk=move || kiosk.get()>
            {children()}
        </main>
    }
    .into_any()
}

/// The frame of an embed view: the main landmark only.
#[component]
fn EmbedFrame(children: Children) -> impl IntoView {
    mark_hydrated();
    view! {
        <main id="main" class="embed">
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
