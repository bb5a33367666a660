//! Signing in and accounts: the login and first-start setup pages, the current user, the
//! users page (admins), one's own account (password, API tokens) and the audit log.

mod account;
mod audit;
mod login;
mod users;

pub use account::AccountPage;
pub use audit::AuditPage;
pub use login::{LoginPage, SetupPage};
pub use users::UsersPage;

use engine::auth::{ApiToken, NewApiToken, Role, User};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The session secret of the current request (request extension set by the server's gate).
#[derive(Clone, Debug)]
pub struct SessionToken(pub String);

/// Who is signed in, as the page frame needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub name: String,
    pub role: Role,
}

/// The actor of the current request, as the server's gate identified it.
#[cfg(feature = "ssr")]
pub fn actor() -> Result<engine::auth::Actor, ApiError> {
    use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<engine::auth::Actor>().cloned())
        .ok_or(ApiError::Unauthenticated)
}

/// The signed-in user, or `None` (on the login page).
#[server(prefix = "/ui", endpoint = "account/me", input = server_fn::codec::GetUrl)]
pub async fn get_current_user() -> Result<Option<CurrentUser>, ApiError> {
    Ok(actor()
        .ok()
        .and_then(|a| a.role.map(|role| CurrentUser { name: a.name, role })))
}

/// All users (admins).
#[server(prefix = "/ui", endpoint = "users/list", input = server_fn::codec::GetUrl)]
pub async fn get_users() -> Result<Vec<User>, ApiError> {
    let actor = actor()?;
    Ok(crate::error::engine()?.list_users(&actor).await?)
}

/// Creates a user (admins).
#[server(prefix = "/ui", endpoint = "users/create")]
pub async fn create_user(username: String, password: String, role: String) -> Result<(), ApiError> {
    let actor = actor()?;
    let role: Role = role.parse().map_err(ApiError::from)?;
    crate::error::engine()?
        .create_user(&actor, &username, &password, role)
        .await?;
    Ok(())
}

/// Changes a user's role (admins).
#[server(prefix = "/ui", endpoint = "users/role")]
pub async fn set_user_role(username: String, role: String) -> Result<(), ApiError> {
    let actor = actor()?;
    let role: Role = role.parse().map_err(ApiError::from)?;
    crate::error::engine()?
        .set_user_role(&actor, &username, role)
        .await?;
    Ok(())
}

/// Disables or enables a user (admins).
#[server(prefix = "/ui", endpoint = "users/disabled")]
pub async fn set_user_disabled(username: String, disabled: bool) -> Result<(), ApiError> {
    let actor = actor()?;
    crate::error::engine()?
        .set_user_disabled(&actor, &username, disabled)
        .await?;
    Ok(())
}

/// Sets another user's password (admins).
#[server(prefix = "/ui", endpoint = "users/password")]
pub async fn reset_password(username: String, password: String) -> Result<(), ApiError> {
    let actor = actor()?;
    crate::error::engine()?
        .reset_password(&actor, &username, &password)
        .await?;
    Ok(())
}

/// Changes the signed-in user's password.
#[server(prefix = "/ui", endpoint = "account/password")]
pub async fn change_password(
    current: String,
    password: String,
    confirm: String,
) -> Result<(), ApiError> {
    let actor = actor()?;
    if password != confirm {
        return Err(ApiError::Invalid {
            field: "confirm".into(),
            message: "the two new passwords differ".into(),
        });
    }
    let token = use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<SessionToken>().map(|t| t.0.clone()));
    crate::error::engine()?
        .change_own_password(&actor, &current, &password, token.as_deref())
        .await?;
    Ok(())
}

/// The signed-in user's API tokens.
#[server(prefix = "/ui", endpoint = "account/tokens", input = server_fn::codec::GetUrl)]
pub async fn get_api_tokens() -> Result<Vec<ApiToken>, ApiError> {
    let actor = actor()?;
    Ok(crate::error::engine()?.list_api_tokens(&actor).await?)
}

/// Creates an API token; its secret is in the answer, once.
#[server(prefix = "/ui", endpoint = "account/token-create")]
pub async fn create_api_token(name: String) -> Result<NewApiToken, ApiError> {
    let actor = actor()?;
    Ok(crate::error::engine()?
        .create_api_token(&actor, &name)
        .await?)
}

/// Revokes one of the signed-in user's API tokens.
#[server(prefix = "/ui", endpoint = "account/token-revoke")]
pub async fn revoke_api_token(id: i64) -> Result<(), ApiError> {
    let actor = actor()?;
    crate::error::engine()?.revoke_api_token(&actor, id).await?;
    Ok(())
}

/// A page of the audit log (admins and operators).
#[server(prefix = "/ui", endpoint = "audit/page", input = server_fn::codec::GetUrl)]
pub async fn get_audit_page(
    query: engine::audit::AuditQuery,
) -> Result<engine::audit::AuditPage, ApiError> {
    let actor = actor()?;
    Ok(crate::error::engine()?.audit_page(&actor, &query).await?)
}

/// The outcome of an action, for a form's status line.
pub fn action_message<T>(value: Option<Result<T, ApiError>>, ok: &str) -> Option<(bool, String)> {
    match value {
        Some(Ok(_)) => Some((true, ok.to_string())),
        Some(Err(e)) => Some((false, e.to_string())),
        None => None,
    }
}

/// A form's status line: success or the error, announced to screen readers.
#[component]
pub fn FormStatus(message: Signal<Option<(bool, String)>>) -> impl IntoView {
    view! {
        <p class="form-status" role="status" aria-live="polite">
            {move || message.get().map(|(ok, text)| {
                let class = if ok { "form-ok" } else { "form-error" };
                view! { <span class=class>{text}</span> }
            })}
        </p>
    }
}
