//! What a simulated site's platform does on its own: rare out-of-sync episodes on one
//! endpoint and occasional alarms, each lasting a while and then clearing. Time is counted in
//! ticks, one per report interval (10 s by default), so the numbers below assume that.
//!
//! Steady state with these rates: ~1 % of sites with an endpoint out of sync, ~2–3 % with an
//! alarm, ~0.4 % degraded by a major alarm: a fleet that looks alive, not on fire.

use engine::agents::wire::{EndpointSync, ReportedAlarm, SiteHealth};
use engine::fleet::{EndpointType, SyncStatus};
use engine::health::AlarmSeverity;
use rand::Rng;

use super::rng::SplitMix64;

/// Chance per tick that an in-sync site starts an out-of-sync episode, and its length.
const OUT_OF_SYNC_PER_TICK: f64 = 0.003;
const OUT_OF_SYNC_TICKS: (u32, u32) = (2, 6);
/// Which endpoint goes out of sync, by weight (same order as [`EndpointType::ALL`]).
const OUT_OF_SYNC_WEIGHTS: [(EndpointType, u32); 7] = [
    (EndpointType::Platform, 30),
    (EndpointType::Identity, 10),
    (EndpointType::DcCert, 15),
    (EndpointType::Firmware, 15),
    (EndpointType::Kubernetes, 10),
    (EndpointType::KubeRootca, 10),
    (EndpointType::Software, 10),
];

/// Where an alarm is raised: on a host (with a suffix) or on a fixed system entity.
#[derive(Debug, Clone, Copy)]
enum Entity {
    Host(&'static str),
    System(&'static str),
}

/// One kind of alarm a site raises by itself (StarlingX numbering).
struct AlarmKind {
    id: &'static str,
    severity: AlarmSeverity,
    entity: Entity,
    /// The reason text, given the host name and a drawn measurement (percent).
    reason: fn(&str, u8) -> String,
    per_tick: f64,
    ticks: (u32, u32),
}

const ALARMS: [AlarmKind; 5] = [
    AlarmKind {
        id: "100.101",
        severity: AlarmSeverity::Minor,
        entity: Entity::Host(".cpu"),
        reason: |_, v| format!("Platform CPU threshold exceeded; threshold 80.00%, actual {v}.00%"),
        per_tick: 0.000_18,
        ticks: (18, 60),
    },
    AlarmKind {
        id: "100.103",
        severity: AlarmSeverity::Major,
        entity: Entity::Host(".memory"),
        reason: |_, v| {
            format!("Platform Memory threshold exceeded; threshold 90.00%, actual {v}.00%")
        },
        per_tick: 0.000_1,
        ticks: (18, 60),
    },
    AlarmKind {
        id: "200.006",
        severity: AlarmSeverity::Minor,
        entity: Entity::Host(".process=collectd"),
        reason: |host, _| {
            format!(
                "{host} is degraded due to the failure of its 'collectd' process. Auto recovery of this minor process is in progress."
            )
        },
        per_tick: 0.000_12,
        ticks: (6, 30),
    },
    AlarmKind {
        id: "100.114",
        severity: AlarmSeverity::Minor,
        entity: Entity::Host(".ntp"),
        reason: |_, _| {
            "NTP configuration does not contain any valid or reachable NTP servers.".into()
        },
        per_tick: 0.000_05,
        ticks: (30, 90),
    },
    AlarmKind {
        id: "500.200",
        severity: AlarmSeverity::Warning,
        entity: Entity::System("system.certificate=system-restapi-gui-certificate"),
        reason: |_, v| {
            format!(
                "Certificate 'system-restapi-gui-certificate' is expiring soon ({} days)",
                v / 4 + 5
            )
        },
        per_tick: 0.000_04,
        ticks: (120, 360),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ActiveAlarm {
    /// Index into [`ALARMS`].
    kind: u8,
    host: u8,
    value: u8,
    remaining: u32,
}

/// The episodes a site is going through now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    out_of_sync: Option<(EndpointType, u32)>,
    alarms: Vec<ActiveAlarm>,
}

impl Behaviour {
    /// A site already in its steady state: each episode is under way with the probability it
    /// would be at a random moment, so a freshly started fleet looks like a running one.
    pub fn warm(rng: &mut SplitMix64, hosts: u32) -> Self {
        let mut b = Self::default();
        let mean = |(lo, hi): (u32, u32)| f64::from(lo + hi) / 2.0;
        if rng.gen_bool((OUT_OF_SYNC_PER_TICK * mean(OUT_OF_SYNC_TICKS)).min(1.0)) {
            b.start_out_of_sync(rng, Some(OUT_OF_SYNC_TICKS.1));
        }
        for (k, kind) in ALARMS.iter().enumerate() {
            if rng.gen_bool((kind.per_tick * mean(kind.ticks)).min(1.0)) {
                b.start_alarm(rng, k, hosts, Some(kind.ticks.1));
            }
        }
        b
    }

    /// One report interval passes: episodes age and end; new ones may start.
    pub fn tick(&mut self, rng: &mut SplitMix64, hosts: u32) {
        if let Some((e, left)) = self.out_of_sync {
            self.out_of_sync = (left > 1).then(|| (e, left - 1));
        } else if rng.gen_bool(OUT_OF_SYNC_PER_TICK) {
            self.start_out_of_sync(rng, None);
        }
        self.alarms.retain_mut(|a| {
            a.remaining = a.remaining.saturating_sub(1);
            a.remaining > 0
        });
        for (k, kind) in ALARMS.iter().enumerate() {
            // Draw for every kind every tick so the stream advances the same way whatever
            // is active (keeps episodes of different kinds independent).
            let starts = rng.gen_bool(kind.per_tick);
            if starts && !self.alarms.iter().any(|a| usize::from(a.kind) == k) {
                self.start_alarm(rng, k, hosts, None);
            }
        }
    }

    fn start_out_of_sync(&mut self, rng: &mut SplitMix64, at_most: Option<u32>) {
        let total: u32 = OUT_OF_SYNC_WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = rng.gen_range(0..total);
        let mut endpoint = EndpointType::Platform;
        for (e, w) in OUT_OF_SYNC_WEIGHTS {
            if roll < w {
                endpoint = e;
                break;
            }
            roll -= w;
        }
        let (lo, hi) = OUT_OF_SYNC_TICKS;
        let ticks = match at_most {
            Some(max) => rng.gen_range(1..=max),
            None => rng.gen_range(lo..=hi),
        };
        self.out_of_sync = Some((endpoint, ticks));
    }

    fn start_alarm(&mut self, rng: &mut SplitMix64, k: usize, hosts: u32, at_most: Option<u32>) {
        let Some(kind) = ALARMS.get(k) else { return };
        let remaining = match at_most {
            Some(max) => rng.gen_range(1..=max),
            None => rng.gen_range(kind.ticks.0..=kind.ticks.1),
        };
        let host = rng.gen_range(0..hosts.clamp(1, 255)) as u8;
        let value = rng.gen_range(81..=99);
        self.alarms.push(ActiveAlarm {
            kind: k as u8,
            host,
            value,
            remaining,
        });
    }

    /// Every endpoint type with its sync status.
    pub fn endpoints(&self) -> Vec<EndpointSync> {
        EndpointType::ALL
            .iter()
            .map(|&endpoint_type| EndpointSync {
                endpoint_type,
                sync_status: match self.out_of_sync {
                    Some((e, _)) if e == endpoint_type => SyncStatus::OutOfSync,
                    _ => SyncStatus::InSync,
                },
            })
            .collect()
    }

    /// The active alarms, as reported.
    pub fn alarms(&self) -> Vec<ReportedAlarm> {
        self.alarms
            .iter()
            .filter_map(|a| {
                let kind = ALARMS.get(usize::from(a.kind))?;
                let host = host_name(a.host);
                let entity = match kind.entity {
                    Entity::Host(suffix) => format!("host={host}{suffix}"),
                    Entity::System(e) => e.to_string(),
                };
                Some(ReportedAlarm {
                    alarm_id: kind.id.to_string(),
                    severity: kind.severity,
                    entity,
                    reason: (kind.reason)(&host, a.value),
                })
            })
            .collect()
    }

    /// Degraded while a major (or worse) alarm is active.
    pub fn health(&self) -> SiteHealth {
        let serious = self.alarms.iter().any(|a| {
            ALARMS.get(usize::from(a.kind)).is_some_and(|k| {
                matches!(k.severity, AlarmSeverity::Major | AlarmSeverity::Critical)
            })
        });
        if serious {
            SiteHealth::Degraded
        } else {
            SiteHealth::Healthy
        }
    }

    /// A `sync_endpoints` command re-synced everything.
    pub fn sync_all(&mut self) {
        self.out_of_sync = None;
    }

    pub fn out_of_sync(&self) -> Option<EndpointType> {
        self.out_of_sync.map(|(e, _)| e)
    }

    pub fn alarm_count(&self) -> usize {
        self.alarms.len()
    }
}

/// Host names as StarlingX numbers them: two controllers, then workers.
pub(super) fn host_name(i: u8) -> String {
    match i {
        0 | 1 => format!("controller-{i}"),
        n => format!("worker-{}", n - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::{stream, Stream};
    use super::*;

    fn run(seed: u64, name: &str, ticks: usize) -> Vec<Behaviour> {
        let mut rng = stream(seed, name, Stream::Behaviour);
        let mut b = Behaviour::warm(&mut rng, 2);
        (0..ticks)
            .map(|_| {
                b.tick(&mut rng, 2);
                b.clone()
            })
            .collect()
    }

    #[test]
    fn episodes_are_deterministic_per_seed() {
        assert_eq!(run(1, "a", 2_000), run(1, "a", 2_000));
        assert_ne!(run(1, "a", 2_000), run(2, "a", 2_000));
    }

    #[test]
    fn steady_state_rates_are_modest_and_reports_are_valid() {
        let (mut alarmed, mut oos, mut degraded, mut samples) = (0, 0, 0, 0);
        for i in 0..400 {
            for b in run(9, &format!("site-{i}"), 300) {
                samples += 1;
                alarmed += usize::from(b.alarm_count() > 0);
                oos += usize::from(b.out_of_sync().is_some());
                degraded += usize::from(b.health() == SiteHealth::Degraded);
                for a in b.alarms() {
                    assert!(
                        crate::text::acceptable(&a.reason) && crate::text::acceptable(&a.entity)
                    );
                }
                assert_eq!(b.endpoints().len(), EndpointType::ALL.len());
            }
        }
        let pct = |n: usize| 100.0 * n as f64 / samples as f64;
        assert!(
            (0.5..6.0).contains(&pct(alarmed)),
            "alarmed {}",
            pct(alarmed)
        );
        assert!((0.3..3.0).contains(&pct(oos)), "out of sync {}", pct(oos));
        assert!(pct(degraded) < 2.0, "degraded {}", pct(degraded));
    }

    #[test]
    fn episodes_end_and_sync_clears() {
        let mut rng = stream(3, "x", Stream::Behaviour);
        let mut b = Behaviour::default();
        b.start_out_of_sync(&mut rng, None);
        b.start_alarm(&mut rng, 1, 1, Some(2));
        assert_eq!(b.health(), SiteHealth::Degraded);
        assert_eq!(b.alarms()[0].alarm_id, "100.103");
        b.sync_all();
        assert!(b
            .endpoints()
            .iter()
            .all(|e| e.sync_status == SyncStatus::InSync));
        for _ in 0..3 {
            b.tick(&mut SplitMix64::new(u64::MAX), 1);
        }
        assert!(
            b.alarms.iter().all(|a| a.kind != 1),
            "the major alarm cleared"
        );
    }
}
