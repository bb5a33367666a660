//! Authentication and authorization: users with roles, server-side sessions, API tokens, and
//! the one permission check every change goes through ([`Actor::require`]).
//!
//! Roles: **admin** (users, settings, embed links, everything), **operator** (fleet actions,
//! orchestration, failover), **viewer** (read only). Engine operations that change state take
//! an [`Actor`] and check its permission themselves, so every entry point (server function,
//! REST route, form post, CLI) is held to the same rule.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::text_enum::text_enum;
use crate::time::Millis;

#[cfg(feature = "store")]
mod password;
#[cfg(feature = "store")]
pub(crate) mod store;
#[cfg(feature = "store")]
pub mod throttle;

#[cfg(feature = "store")]
pub use store::{LoginOutcome, SessionPolicy};

text_enum! {
    /// What a user may do.
    pub enum Role: "role" {
        Admin = "admin",
        Operator = "operator",
        Viewer = "viewer",
    }
}

/// Something a request may want to do; each role allows a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the fleet, health and orchestration state.
    Read,
    /// Read the audit log.
    ReadAudit,
    /// Manage or unmanage subclouds and other fleet actions.
    OperateFleet,
    /// Create, apply, pause or abort rollouts.
    Orchestrate,
    /// Migrate peer groups, fail over, fail back.
    Failover,
    /// Create and change users.
    ManageUsers,
    /// Create and revoke embed links; change settings.
    Administer,
    /// Change one's own password and API tokens.
    ManageSelf,
}

impl Permission {
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read the fleet",
            Permission::ReadAudit => "read the audit log",
            Permission::OperateFleet => "change the fleet",
            Permission::Orchestrate => "run orchestration",
            Permission::Failover => "move peer groups",
            Permission::ManageUsers => "manage users",
            Permission::Administer => "change settings",
            Permission::ManageSelf => "change your own account",
        }
    }
}

impl Role {
    /// The policy, in one table.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match p {
            Read | ManageSelf => true,
            ReadAudit | OperateFleet | Orchestrate | Failover => {
                matches!(self, Role::Admin | Role::Operator)
            }
            ManageUsers | Administer => self == Role::Admin,
        }
    }
}

/// Who is asking: a signed-in user (through a session or an API token), or the controller
/// itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    /// `None` for the controller itself, which may do anything.
    pub role: Option<Role>,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            user_id: None,
            name: "system".into(),
            role: None,
            client_addr: None,
        }
    }

    pub fn user(user: &User, client_addr: Option<String>) -> Self {
        Self {
            user_id: Some(user.id),
            name: user.name.clone(),
            role: Some(user.role),
            client_addr,
        }
    }

    pub fn role_name(&self) -> &'static str {
        self.role.map(Role::as_str).unwrap_or("system")
    }

    pub fn may(&self, p: Permission) -> bool {
        self.role.is_none_or(|r| r.allows(p))
    }

    /// Refuses with [`crate::Error::Forbidden`] unless the actor's role allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), crate::Error> {
        if self.may(p) {
            Ok(())
        } else {
            Err(crate::Error::Forbidden(format!(
                "the {} role may not {}",
                self.role_name(),
                p.describe()
            )))
        }
    }
}

/// A user's login name: 1–64 characters of ASCII letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit. Compared case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = |m: &str| Err(ValidationError::new("username", m));
        if raw.is_empty() {
            return err("a user name is required");
        }
        if raw.len() > 64 {
            return err("a user name is at most 64 characters");
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return err("a user name starts with a letter or digit");
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return err("a user name uses only letters, digits, '.', '_' and '-'");
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A new password: 12 to 256 characters (long passphrases welcome; the cap bounds hashing
/// work), not all the same character. Never serialized.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("a password has at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("a password has at most {} characters", Self::MAX_CHARS),
            ));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(ValidationError::new(
                "password",
                "a password is not one character repeated",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A user account as the dashboard shows it (no password hash: it never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Millis,
    pub last_login_at: Option<Millis>,
}

/// An API token's public description (the secret is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// A freshly created API token; `secret` is shown once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiToken {
    pub token: ApiToken,
    pub secret: String,
}

/// A local path to return to after login: must start with one `/` (no scheme, no host, no
/// `//` or `/\` which browsers treat as another host). Anything else becomes `/`.
pub fn safe_next_path(raw: &str) -> String {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && raw.len() <= 2048
        && !raw.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        raw.to_string()
    } else {
        "/".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        use Permission::*;
        for p in [Read, ManageSelf] {
            assert!(Role::Viewer.allows(p));
        }
        for p in [
            ReadAudit,
            OperateFleet,
            Orchestrate,
            Failover,
            ManageUsers,
            Administer,
        ] {
            assert!(!Role::Viewer.allows(p), "{p:?}");
            assert!(Role::Admin.allows(p), "{p:?}");
        }
        assert!(Role::Operator.allows(Orchestrate));
        assert!(!Role::Operator.allows(ManageUsers));
        assert!(Actor::system().may(ManageUsers));
        let viewer = Actor {
            user_id: Some(1),
            name: "v".into(),
            role: Some(Role::Viewer),
            client_addr: None,
        };
        let e = viewer.require(Orchestrate).unwrap_err();
        assert!(
            e.to_string()
                .contains("viewer role may not run orchestration"),
            "{e}"
        );
    }

    #[test]
    fn user_names() {
        assert!(UserName::parse("noc.operator-1").is_ok());
        for bad in ["", ".x", "a b", "ädmin", "x'--", &"a".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(NewPassword::parse("correct horse battery").is_ok());
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"a".repeat(20)).is_err());
        assert!(NewPassword::parse(&"ab".repeat(129)).is_err());
        assert!(NewPassword::parse("🐦🐦🐦🐦🐦🐦🐦🐦🐦🐦🐦🐧").is_ok());
        assert_eq!(
            format!("{:?}", NewPassword::parse("correct horse battery").unwrap()),
            "NewPassword(***)"
        );
    }

    #[test]
    fn next_paths() {
        assert_eq!(
            safe_next_path("/subclouds?alarm=critical"),
            "/subclouds?alarm=critical"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "evil",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_next_path(bad), "/", "{bad:?}");
        }
    }
}
