//! Adding a subcloud: the inventory row, its seven endpoints (sync unknown) and its agent's
//! one-time enrollment token, in one transaction. The site appears offline and unmanaged until
//! its agent enrolls and reports.

use serde::{Deserialize, Serialize};

/// What an admin gives to add a subcloud (`POST /api/v1/subclouds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSubcloud {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// City shown in lists (free text).
    pub city: String,
    #[serde(default)]
    pub country: String,
    /// One of the store's regions, by name.
    pub region: String,
    pub lat: f64,
    pub lon: f64,
    /// Subcloud group by name (default: `Default`).
    #[serde(default)]
    pub group: Option<String>,
    /// Peer group by name, if any.
    #[serde(default)]
    pub peer_group: Option<String>,
    /// The system controller that manages it, by name.
    pub controller: String,
    /// IANA time zone of the site (maintenance windows are in local time); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
}

#[cfg(feature = "store")]
mod store {
    use sqlx::Row;

    use super::NewSubcloud;
    use crate::agents::SiteEnrollment;
    use crate::audit;
    use crate::auth::{Actor, Permission};
    use crate::error::{Error, Result};
    use crate::events::Event;
    use crate::fleet::{Coordinates, DisplayName, EndpointType, SubcloudName};
    use crate::time::Millis;
    use crate::Engine;

    impl Engine {
        /// Adds a subcloud and returns its agent's enrollment token (shown once). Admins only:
        /// it mints a credential.
        pub async fn add_subcloud(
            &self,
            actor: &Actor,
            new: &NewSubcloud,
        ) -> Result<SiteEnrollment> {
            actor.require(Permission::Administer)?;
            let name = SubcloudName::parse(&new.name)?;
            let city = DisplayName::parse("city", &new.city)?;
            // Errors name the request's fields (`lat`, `lon`).
            let at = Coordinates::new(new.lat, new.lon).map_err(|e| {
                let field = if e.field == "latitude" { "lat" } else { "lon" };
                e.in_field(field)
            })?;
            for (field, v) in [("description", &new.description), ("country", &new.country)] {
                if v.chars().count() > 255
                    || v.chars()
                        .any(|c| c.is_control() || crate::fleet::is_bidi_control(c))
                {
                    return Err(crate::ValidationError::new(
                        field,
                        format!("{field} is at most 255 characters without control characters"),
                    )
                    .into());
                }
            }
            let timezone = new.timezone.as_deref().unwrap_or("UTC");
            if timezone.len() > 64 || jiff::tz::TimeZone::get(timezone).is_err() {
                return Err(crate::ValidationError::new(
                    "timezone",
                    "timezone must be an IANA time zone name such as Europe/Paris",
                )
                .into());
            }
            let pool = self.store.pool();
            let id_of = |table: &'static str, field: &'static str, value: String| async move {
                let id: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
                        .bind(&value)
                        .fetch_optional(pool)
                        .await?;
                id.ok_or_else(|| {
                    Error::from(crate::ValidationError::new(
                        field,
                        format!("no {field} named {value:?}"),
                    ))
                })
            };
            let region_id = id_of("regions", "region", new.region.clone()).await?;
            let controller_id =
                id_of("system_controllers", "controller", new.controller.clone()).await?;
            let group_id = id_of(
                "subcloud_groups",
                "group",
                new.group.clone().unwrap_or_else(|| "Default".into()),
            )
            .await?;
            let peer_group_id = match &new.peer_group {
                Some(p) => Some(id_of("peer_groups", "peer_group", p.clone()).await?),
                None => None,
            };
            let now = Millis::now();
            let mut tx = self.store.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO subclouds (name, description, location, city, country, region_id, lat, lon, \
                 management_state, availability, deploy_status, sync_status, software_version, group_id, \
                 peer_group_id, controller_id, created_at, updated_at, timezone) \
                 VALUES ($1, $2, '', $3, $4, $5, $6, $7, 'unmanaged', 'offline', 'not-deployed', 'unknown', '', \
                 $8, $9, $10, $11, $11, $12) ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(name.as_str())
            .bind(&new.description)
            .bind(city.as_str())
            .bind(&new.country)
            .bind(region_id)
            .bind(at.lat())
            .bind(at.lon())
            .bind(group_id)
            .bind(peer_group_id)
            .bind(controller_id)
            .bind(now.0)
            .bind(timezone)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = inserted else {
                return Err(Error::Conflict(format!(
                    "a subcloud named {} exists",
                    name.as_str()
                )));
            };
            let id: i64 = row.try_get(0)?;
            for e in EndpointType::ALL {
                sqlx::query(
                    "INSERT INTO subcloud_endpoints (subcloud_id, endpoint_type, sync_status, updated_at) \
                     VALUES ($1, $2, 'unknown', $3)",
                )
                .bind(id)
                .bind(e.as_str())
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
            audit::record(
                &mut tx,
                &actor.audit(
                    "subcloud.added",
                    &format!("subcloud:{}", name.as_str()),
                    format!(
                        "added in {} ({}), managed by {}",
                        city.as_str(),
                        new.region,
                        new.controller
                    ),
                ),
            )
            .await?;
            let enrollment = self.issue_enrollment_in(&mut tx, id, now).await?;
            crate::georedundancy::store::bump_revision_of_subcloud(&mut tx, id).await?;
            tx.commit().await?;
            self.register_agent(id, name.as_str(), peer_group_id)
                .await?;
            self.events.publish(Event::SubcloudAdded {
                name: name.as_str().to_string(),
                at: now,
            });
            Ok(enrollment)
        }
    }
}
