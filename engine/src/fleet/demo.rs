//! The demo fleet: a deterministic, realistic distributed cloud at real city coordinates on
//! every continent, with three controllers, subcloud groups, peer groups and a plausible mix
//! of states and alarms (including one city in a power outage).
//!
//! Generation is a pure function of the index of each subcloud, so the fleet for N sites is
//! the first N sites of any larger fleet, and seeding twice changes nothing.
//!
//! A demo without a simulator also gets one finished strategy (`demo_strategy`).

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Any, Transaction};

use super::cities::{City, Continent, CITIES};
use super::{AvailabilityStatus, DeployStatus, EndpointType, ManagementState, SyncStatus};
use crate::audit::{self, AuditEntry};
use crate::error::{Result, ValidationError};
use crate::events::Event;
use crate::health::{alarm_ids, AlarmCounts, AlarmSeverity};
use crate::store::{count, Sql};
use crate::time::Millis;
use crate::Engine;

/// Largest demo fleet `murmur demo` will create.
pub const MAX_SUBCLOUDS: u32 = 20_000;
/// Default demo fleet size.
pub const DEFAULT_SUBCLOUDS: u32 = 2_000;
const SEED: u64 = 0x4d55_524d_5552_0001;
/// The city whose sites are mostly offline (a regional power outage), so the map and the
/// alarm views have a real cluster to show.
pub(crate) const OUTAGE_CITY: &str = "Lyon";
const SETTINGS_KEY: &str = "demo.subclouds";

/// A demo system controller.
pub struct DemoController {
    pub name: &'static str,
    pub region: &'static str,
    pub city: &'static str,
    pub lat: f64,
    pub lon: f64,
}

pub const CONTROLLERS: [DemoController; 3] = [
    DemoController {
        name: "sc-amsterdam",
        region: "Europe",
        city: "Amsterdam",
        lat: 52.37,
        lon: 4.90,
    },
    DemoController {
        name: "sc-dallas",
        region: "North America",
        city: "Dallas",
        lat: 32.78,
        lon: -96.80,
    },
    DemoController {
        name: "sc-singapore",
        region: "Asia",
        city: "Singapore",
        lat: 1.35,
        lon: 103.82,
    },
];

/// Regions (one per continent) with a rough centroid.
const REGIONS: [(&str, f64, f64); 6] = [
    ("Africa", 2.0, 20.0),
    ("Asia", 30.0, 100.0),
    ("Europe", 50.0, 10.0),
    ("North America", 40.0, -100.0),
    ("Oceania", -25.0, 140.0),
    ("South America", -15.0, -60.0),
];

fn region_of(c: Continent) -> &'static str {
    match c {
        Continent::Africa => "Africa",
        Continent::Asia => "Asia",
        Continent::Europe => "Europe",
        Continent::NorthAmerica => "North America",
        Continent::Oceania => "Oceania",
        Continent::SouthAmerica => "South America",
    }
}

/// Subcloud groups with their orchestration settings and share of the fleet (percent).
const GROUPS: [(&str, &str, &str, i64, u32); 6] = [
    ("Default", "Default subcloud group", "parallel", 2, 22),
    (
        "ran-far-edge",
        "5G RAN distributed units at cell sites",
        "parallel",
        50,
        32,
    ),
    ("retail-stores", "In-store edge servers", "parallel", 25, 20),
    (
        "factory-floor",
        "Private 5G and MES at plants",
        "serial",
        1,
        12,
    ),
    (
        "smart-city",
        "Traffic and CCTV analytics",
        "parallel",
        10,
        11,
    ),
    ("canary", "First wave of every rollout", "serial", 1, 3),
];

/// Peer groups: (name, leading controller, max_subcloud_rehoming).
const PEER_GROUPS: [(&str, &str, i64); 9] = [
    ("pg-eu-west", "sc-amsterdam", 20),
    ("pg-eu-east", "sc-amsterdam", 20),
    ("pg-africa", "sc-amsterdam", 10),
    ("pg-na-east", "sc-dallas", 20),
    ("pg-na-west", "sc-dallas", 20),
    ("pg-latam", "sc-dallas", 10),
    ("pg-asia-west", "sc-singapore", 20),
    ("pg-asia-east", "sc-singapore", 20),
    ("pg-oceania", "sc-singapore", 10),
];

fn peer_group_of(city: &City) -> &'static str {
    match city.continent {
        Continent::Europe if city.lon < 10.0 => "pg-eu-west",
        Continent::Europe => "pg-eu-east",
        Continent::Africa => "pg-africa",
        Continent::NorthAmerica if city.lon < -100.0 => "pg-na-west",
        Continent::NorthAmerica => "pg-na-east",
        Continent::SouthAmerica => "pg-latam",
        Continent::Asia if city.lon < 90.0 => "pg-asia-west",
        Continent::Asia => "pg-asia-east",
        Continent::Oceania => "pg-oceania",
    }
}

fn controller_of(c: Continent) -> &'static str {
    match c {
        Continent::Europe | Continent::Africa => "sc-amsterdam",
        Continent::NorthAmerica | Continent::SouthAmerica => "sc-dallas",
        Continent::Asia | Continent::Oceania => "sc-singapore",
    }
}

/// An alarm of a generated subcloud.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoAlarm {
    pub alarm_id: &'static str,
    pub severity: AlarmSeverity,
    pub reason: String,
    pub entity: String,
    /// How long before seeding it was raised.
    pub age_minutes: i64,
}

/// A generated subcloud.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSubcloud {
    pub name: String,
    pub description: String,
    pub city: &'static City,
    pub lat: f64,
    pub lon: f64,
    pub management: ManagementState,
    pub availability: AvailabilityStatus,
    pub deploy_status: DeployStatus,
    pub software_version: &'static str,
    pub group: &'static str,
    pub peer_group: Option<&'static str>,
    pub controller: &'static str,
    pub endpoints: Vec<(EndpointType, SyncStatus)>,
    pub alarms: Vec<DemoAlarm>,
}

impl DemoSubcloud {
    pub fn sync_status(&self) -> SyncStatus {
        super::roll_up_sync(self.endpoints.iter().map(|(_, s)| *s))
    }

    pub fn alarm_counts(&self) -> AlarmCounts {
        AlarmCounts::of(self.alarms.iter().map(|a| &a.severity))
    }
}

/// Lowercase ASCII slug of a city name ("São Paulo" → "sao-paulo").
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let mapped = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'Å' => "a",
            'ç' | 'ć' | 'č' => "c",
            'é' | 'è' | 'ê' | 'ë' | 'É' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ñ' | 'ń' => "n",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'Ö' | 'Ø' => "o",
            'ú' | 'ù' | 'û' | 'ü' | 'Ü' => "u",
            'ý' | 'ÿ' => "y",
            'ś' | 'š' | 'ș' | 'ş' => "s",
            'ź' | 'ż' | 'ž' => "z",
            'ł' | 'Ł' => "l",
            'ğ' => "g",
            'ı' | 'İ' => "i",
            'ț' | 'ţ' => "t",
            'ř' => "r",
            'đ' => "d",
            'ß' => "ss",
            'æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "-",
        };
        out.push_str(mapped);
    }
    let parts: Vec<&str> = out.split('-').filter(|p| !p.is_empty()).collect();
    parts.join("-")
}

fn pick<T: Copy>(rng: &mut StdRng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (v, w) in weighted {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    weighted[0].0
}

/// The first `n` subclouds of the demo fleet.
pub fn generate(n: u32) -> Vec<DemoSubcloud> {
    let weights: Vec<(usize, u32)> = CITIES
        .iter()
        .enumerate()
        .map(|(i, c)| (i, u32::from(c.weight)))
        .collect();
    let mut per_city: HashMap<usize, u32> = HashMap::new();
    (0..u64::from(n))
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(SEED ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let ci = pick(&mut rng, &weights);
            let ordinal = per_city.entry(ci).or_insert(0);
            *ordinal += 1;
            subcloud(&mut rng, &CITIES[ci], *ordinal)
        })
        .collect()
}

fn subcloud(rng: &mut StdRng, city: &'static City, ordinal: u32) -> DemoSubcloud {
    let name = format!("{}-{ordinal:04}", slug(city.name));
    let lat = (city.lat + rng.gen_range(-0.35..0.35)).clamp(-89.9, 89.9);
    let lon = (city.lon + rng.gen_range(-0.45..0.45)).clamp(-179.9, 179.9);
    let group = pick(rng, &GROUPS.iter().map(|g| (g.0, g.4)).collect::<Vec<_>>());
    let peer_group = (rng.gen_range(0..100) >= 7).then(|| peer_group_of(city));
    let software_version = pick(rng, &[("24.09", 62), ("25.09", 30), ("22.12", 8)]);

    let outage = city.name == OUTAGE_CITY && rng.gen_range(0..100) < 70;
    let roll = rng.gen_range(0..1000);
    use DeployStatus::*;
    let (deploy_status, management) = match roll {
        0..=9 => (
            pick(
                rng,
                &[
                    (Installing, 3),
                    (Bootstrapping, 3),
                    (Configuring, 2),
                    (PreInstall, 2),
                ],
            ),
            ManagementState::Unmanaged,
        ),
        10..=27 => (
            pick(
                rng,
                &[
                    (InstallFailed, 4),
                    (BootstrapFailed, 5),
                    (ConfigFailed, 4),
                    (DeployPrepFailed, 1),
                ],
            ),
            ManagementState::Unmanaged,
        ),
        28..=44 => (SwDeployInProgress, ManagementState::Managed),
        45..=51 => (SwDeployApplyStrategyFailed, ManagementState::Managed),
        52..=57 => (RehomePending, ManagementState::Unmanaged),
        58..=77 => (Complete, ManagementState::Unmanaged),
        _ => (Complete, ManagementState::Managed),
    };
    let availability = if outage
        || (deploy_status.is_in_progress() && deploy_status != SwDeployInProgress)
        || deploy_status.is_failure() && deploy_status != SwDeployApplyStrategyFailed
        || rng.gen_range(0..1000) < 28
    {
        AvailabilityStatus::Offline
    } else {
        AvailabilityStatus::Online
    };

    let endpoints: Vec<(EndpointType, SyncStatus)> = EndpointType::ALL
        .iter()
        .map(|&e| {
            let status = if availability == AvailabilityStatus::Offline
                || management == ManagementState::Unmanaged
            {
                SyncStatus::Unknown
            } else {
                let out_pct = match e {
                    EndpointType::Software if software_version == "22.12" => 35,
                    EndpointType::Software => 3,
                    EndpointType::Firmware => 2,
                    EndpointType::DcCert => 1,
                    _ => 0,
                };
                if rng.gen_range(0..100) < out_pct {
                    SyncStatus::OutOfSync
                } else {
                    SyncStatus::InSync
                }
            };
            (e, status)
        })
        .collect();

    let entity = format!("subcloud={name}");
    let mut alarms = Vec::new();
    if availability == AvailabilityStatus::Offline && management == ManagementState::Managed {
        alarms.push(DemoAlarm {
            alarm_id: alarm_ids::SUBCLOUD_OFFLINE,
            severity: AlarmSeverity::Critical,
            reason: format!("Subcloud {name} is offline"),
            entity: entity.clone(),
            age_minutes: if outage {
                rng.gen_range(20..95)
            } else {
                rng.gen_range(5..4000)
            },
        });
    }
    for (e, s) in &endpoints {
        if *s == SyncStatus::OutOfSync {
            alarms.push(DemoAlarm {
                alarm_id: alarm_ids::SUBCLOUD_OUT_OF_SYNC,
                severity: AlarmSeverity::Major,
                reason: format!("Subcloud {name} {e} sync_status is out-of-sync"),
                entity: format!("{entity}.resource={e}"),
                age_minutes: rng.gen_range(30..20_000),
            });
        }
    }
    if availability == AvailabilityStatus::Online {
        let extra: [(u32, &str, AlarmSeverity, &str); 5] = [
            (
                40,
                "100.101",
                AlarmSeverity::Major,
                "Platform CPU threshold exceeded; threshold 90.00%, actual 96.41%",
            ),
            (
                30,
                "100.103",
                AlarmSeverity::Minor,
                "Platform Memory threshold exceeded; threshold 80.00%, actual 84.12%",
            ),
            (
                15,
                "200.006",
                AlarmSeverity::Major,
                "controller-0 'ntpd' process has failed; auto recovery in progress",
            ),
            (
                55,
                "500.210",
                AlarmSeverity::Warning,
                "Certificate 'system-restapi-gui-certificate' is set to expire in 21 days",
            ),
            (
                25,
                "750.006",
                AlarmSeverity::Warning,
                "A configuration change requires a reapply of the cert-manager application",
            ),
        ];
        for (per_mille, id, severity, reason) in extra {
            if rng.gen_range(0..1000) < per_mille {
                alarms.push(DemoAlarm {
                    alarm_id: id,
                    severity,
                    reason: reason.to_string(),
                    entity: format!("{entity}.host=controller-0"),
                    age_minutes: rng.gen_range(1..10_000),
                });
            }
        }
    }
    if deploy_status == SwDeployApplyStrategyFailed {
        alarms.push(DemoAlarm {
            alarm_id: "900.103",
            severity: AlarmSeverity::Major,
            reason: "Software deploy strategy apply failed on controller-0".into(),
            entity: format!("{entity}.orchestration=sw-deploy"),
            age_minutes: rng.gen_range(10..3000),
        });
    }

    DemoSubcloud {
        description: format!("{} edge site {ordinal} ({group})", city.name),
        name,
        city,
        lat,
        lon,
        management,
        availability,
        deploy_status,
        software_version,
        group,
        peer_group,
        controller: controller_of(city.continent),
        endpoints,
        alarms,
    }
}

/// What seeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub subclouds: u64,
    pub added: u64,
    pub removed: u64,
}

/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bind-parameter limits.
const BATCH: usize = 400;

impl Engine {
    /// Creates the demo fleet of `n` subclouds, or resizes an earlier one to `n`. Running it
    /// again with the same `n` changes nothing; live state of existing sites is kept.
    pub async fn seed_demo(&self, n: u32) -> Result<SeedReport> {
        if !(1..=MAX_SUBCLOUDS).contains(&n) {
            return Err(ValidationError::new(
                "subclouds",
                format!("the demo fleet has between 1 and {MAX_SUBCLOUDS} subclouds"),
            )
            .into());
        }
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;

        let previous: u32 =
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                .bind(SETTINGS_KEY)
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        let fleet = generate(n.max(previous));

        let ids = seed_topology(&mut tx, n, now).await?;

        // Shrink: drop the generated sites beyond n (their endpoints and alarms cascade).
        let mut removed = 0u64;
        for chunk in fleet[n as usize..].chunks(BATCH) {
            let mut b = Sql::new("DELETE FROM subclouds WHERE name IN (");
            for s in chunk {
                b.item(s.name.clone());
            }
            b.push(")");
            let (sql, args) = b.finish()?;
            removed += sqlx::query_with(&sql, args)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }

        let existing: HashSet<String> = sqlx::query_scalar("SELECT name FROM subclouds")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<&DemoSubcloud> = fleet[..n as usize]
            .iter()
            .filter(|s| !existing.contains(&s.name))
            .collect();
        insert_subclouds(&mut tx, &missing, &ids, now).await?;

        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(SETTINGS_KEY)
        .bind(n.to_string())
        .execute(&mut *tx)
        .await?;

        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subclouds")
            .fetch_one(&mut *tx)
            .await?;
        let report = SeedReport {
            subclouds: count(total),
            added: missing.len() as u64,
            removed,
        };
        let changed = report.added > 0 || report.removed > 0;
        if changed {
            audit::record(
                &mut tx,
                &AuditEntry::system(
                    "demo.seed",
                    "fleet",
                    format!(
                        "demo fleet sized to {n}: {} added, {} removed",
                        report.added, report.removed
                    ),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        if changed {
            self.store.analyze().await?;
            self.events.publish(Event::FleetSeeded {
                subclouds: report.subclouds,
                added: report.added,
                removed: report.removed,
                at: Millis(now),
            });
        }
        Ok(report)
    }
}

/// Ids of the rows subclouds refer to, by name.
struct TopologyIds {
    regions: HashMap<String, i64>,
    controllers: HashMap<String, i64>,
    groups: HashMap<String, i64>,
    peer_groups: HashMap<String, i64>,
}

async fn name_ids(tx: &mut Transaction<'_, Any>, table: &str) -> Result<HashMap<String, i64>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!("SELECT id, name FROM {table}"))
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(|(id, name)| (name, id)).collect())
}

/// Regions, controllers, groups and peer groups: inserted once, capacities follow `n`.
async fn seed_topology(tx: &mut Transaction<'_, Any>, n: u32, now: i64) -> Result<TopologyIds> {
    for (name, lat, lon) in REGIONS {
        sqlx::query("INSERT INTO regions (name, lat, lon) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(lat)
            .bind(lon)
            .execute(&mut **tx)
            .await?;
    }
    let regions = name_ids(tx, "regions").await?;
    // Each controller can carry 80% of the fleet and keeps a tenth of that in reserve, so
    // the two survivors of a failed controller can absorb its third of the fleet.
    let capacity = ((i64::from(n) * 8 / 10 + 99) / 100).max(10) * 100;
    for c in &CONTROLLERS {
        sqlx::query(
            "INSERT INTO system_controllers (name, region_id, city, lat, lon, endpoint, \
             availability, capacity, reserved_capacity, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'available', $7, $8, $9, $9) \
             ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, \
             reserved_capacity = excluded.reserved_capacity",
        )
        .bind(c.name)
        .bind(regions[c.region])
        .bind(c.city)
        .bind(c.lat)
        .bind(c.lon)
        .bind(format!("https://{}.murmur.example:8443", c.name))
        .bind(capacity)
        .bind(capacity / 10)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let controllers = name_ids(tx, "system_controllers").await?;
    for (name, description, apply, max_parallel, _) in GROUPS {
        sqlx::query(
            "INSERT INTO subcloud_groups (name, description, update_apply_type, \
             max_parallel_subclouds, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(description)
        .bind(apply)
        .bind(max_parallel)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let groups = name_ids(tx, "subcloud_groups").await?;
    for (name, leader, max_rehoming) in PEER_GROUPS {
        sqlx::query(
            "INSERT INTO peer_groups (name, priority, state, max_subcloud_rehoming, leader_id, \
             home_controller_id, migration_status, owner_epoch, owned_since, created_at, updated_at) \
             VALUES ($1, 0, 'enabled', $2, $3, $3, 'none', 1, $4, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(max_rehoming)
        .bind(controllers[leader])
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let peer_groups = name_ids(tx, "peer_groups").await?;
    // Every group is associated with every controller: its leader first, then the others
    // nearest first (agents' latency decides ties at takeover time).
    for (name, leader, _) in PEER_GROUPS {
        let home = CONTROLLERS.iter().find(|c| c.name == leader);
        let mut order: Vec<&DemoController> = CONTROLLERS.iter().collect();
        order.sort_by(|a, b| {
            let d = |c: &DemoController| home.map_or(0.0, |h| (c.lat - h.lat).hypot(c.lon - h.lon));
            (a.name != leader, d(a))
                .partial_cmp(&(b.name != leader, d(b)))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for (k, c) in order.into_iter().enumerate() {
            sqlx::query(
                "INSERT INTO peer_group_associations (peer_group_id, controller_id, priority, \
                 association_type, sync_status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (peer_group_id, controller_id) DO NOTHING",
            )
            .bind(peer_groups[name])
            .bind(controllers[c.name])
            .bind(k as i64 + 1)
            .bind(if c.name == leader { "primary" } else { "non-primary" })
            .bind(if c.name == leader { "in-sync" } else { "unknown" })
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(TopologyIds {
        regions,
        controllers,
        groups,
        peer_groups,
    })
}

async fn insert_subclouds(
    tx: &mut Transaction<'_, Any>,
    subclouds: &[&DemoSubcloud],
    ids: &TopologyIds,
    now: i64,
) -> Result<()> {
    for chunk in subclouds.chunks(BATCH) {
        let mut b = Sql::new(
            "INSERT INTO subclouds (name, description, location, city, country, region_id, lat, \
             lon, management_state, availability, deploy_status, sync_status, software_version, \
             group_id, peer_group_id, controller_id, alarm_status, alarm_rank, critical_alarms, \
             major_alarms, minor_alarms, warnings, timezone, created_at, updated_at) VALUES ",
        );
        for (i, s) in chunk.iter().enumerate() {
            let counts = s.alarm_counts();
            b.push(if i == 0 { "(" } else { "), (" })
                .item(s.name.clone())
                .item(s.description.clone())
                .item(format!("{}, {}", s.city.name, s.city.country))
                .item(s.city.name)
                .item(s.city.country)
                .item(ids.regions[region_of(s.city.continent)])
                .item(s.lat)
                .item(s.lon)
                .item(s.management.as_str())
                .item(s.availability.as_str())
                .item(s.deploy_status.as_str())
                .item(s.sync_status().as_str())
                .item(s.software_version)
                .item(ids.groups[s.group])
                .item(s.peer_group.map(|p| ids.peer_groups[p]))
                .item(ids.controllers[s.controller])
                .item(counts.status().as_str())
                .item(counts.status().rank())
                .item(i64::from(counts.critical))
                .item(i64::from(counts.major))
                .item(i64::from(counts.minor))
                .item(i64::from(counts.warnings))
                .item(s.city.tz)
                .item(now)
                .item(now);
        }
        b.push(")");
        let (sql, args) = b.finish()?;
        sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    }
    if subclouds.is_empty() {
        return Ok(());
    }
    let all_ids = name_ids(tx, "subclouds").await?;

    let endpoints: Vec<(i64, EndpointType, SyncStatus)> = subclouds
        .iter()
        .flat_map(|s| {
            let id = all_ids[&s.name];
            s.endpoints.iter().map(move |(e, st)| (id, *e, *st))
        })
        .collect();
    for chunk in endpoints.chunks(BATCH * 2) {
        let mut b = Sql::new(
            "INSERT INTO subcloud_endpoints (subcloud_id, endpoint_type, sync_status, updated_at) VALUES ",
        );
        for (i, (id, e, st)) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { "), (" })
                .item(*id)
                .item(e.as_str())
                .item(st.as_str())
                .item(now);
        }
        b.push(")");
        let (sql, args) = b.finish()?;
        sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    }

    let alarms: Vec<(i64, &DemoAlarm)> = subclouds
        .iter()
        .flat_map(|s| {
            let id = all_ids[&s.name];
            s.alarms.iter().map(move |a| (id, a))
        })
        .collect();
    for chunk in alarms.chunks(BATCH) {
        let mut b = Sql::new(
            "INSERT INTO alarms (subcloud_id, alarm_id, severity, reason, entity, raised_at, \
             acknowledged, source) VALUES ",
        );
        for (i, (id, a)) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { "), (" })
                .item(*id)
                .item(a.alarm_id)
                .item(a.severity.as_str())
                .item(a.reason.clone())
                .item(a.entity.clone())
                .item(now - a.age_minutes * 60_000)
                .item(0i64)
                // The controller's own alarms (280.xxx) vs those a site's agent reports: the
                // agent's next report replaces the latter.
                .item(if a.alarm_id.starts_with("280.") {
                    "controller"
                } else {
                    "agent"
                });
        }
        b.push(")");
        let (sql, args) = b.finish()?;
        sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::SubcloudName;

    #[test]
    fn deterministic_and_prefix_stable() {
        let a = generate(300);
        let b = generate(500);
        assert_eq!(a[..], b[..300]);
        assert_eq!(a, generate(300));
    }

    #[test]
    fn names_are_valid_and_unique() {
        let fleet = generate(5000);
        let mut seen = HashSet::new();
        for s in &fleet {
            SubcloudName::parse(&s.name).unwrap();
            assert!(seen.insert(s.name.clone()), "duplicate {}", s.name);
        }
        assert_eq!(slug("São Paulo"), "sao-paulo");
        assert_eq!(slug("Cluj-Napoca"), "cluj-napoca");
        assert_eq!(slug("Zürich"), "zurich");
    }

    #[test]
    fn realistic_mix() {
        let fleet = generate(2000);
        let offline = fleet
            .iter()
            .filter(|s| s.availability == AvailabilityStatus::Offline)
            .count();
        assert!((40..300).contains(&offline), "offline {offline}");
        let continents: HashSet<_> = fleet.iter().map(|s| s.city.continent).collect();
        assert_eq!(continents.len(), 6, "every continent has sites");
        let controllers: HashSet<_> = fleet.iter().map(|s| s.controller).collect();
        assert_eq!(controllers.len(), 3);
        let critical = fleet
            .iter()
            .filter(|s| s.alarm_counts().critical > 0)
            .count();
        assert!(critical > 20, "critical {critical}");
        let out_of_sync = fleet
            .iter()
            .filter(|s| s.sync_status() == SyncStatus::OutOfSync)
            .count();
        assert!(out_of_sync > 20, "out of sync {out_of_sync}");
        // The outage city is mostly dark.
        let lyon: Vec<_> = fleet
            .iter()
            .filter(|s| s.city.name == OUTAGE_CITY)
            .collect();
        let lyon_off = lyon
            .iter()
            .filter(|s| s.availability == AvailabilityStatus::Offline)
            .count();
        assert!(!lyon.is_empty() && lyon_off * 2 > lyon.len());
    }

    #[test]
    fn offline_managed_sites_have_the_offline_alarm() {
        for s in generate(2000) {
            let has = s
                .alarms
                .iter()
                .any(|a| a.alarm_id == alarm_ids::SUBCLOUD_OFFLINE);
            let expect = s.availability == AvailabilityStatus::Offline
                && s.management == ManagementState::Managed;
            assert_eq!(has, expect, "{}", s.name);
        }
    }
}
