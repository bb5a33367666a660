//! Placement of a failed controller's peer groups on the survivors (pure). The drill page and
//! the automatic takeover use the same function, so the drill shows what would really happen.
//!
//! Rules, in order: groups of lower `priority` first (then larger groups first, so a big group
//! is not starved by small ones); each goes to the surviving *associated* controller with the
//! best association priority that has headroom (capacity beyond its reserve and what it
//! manages, counting groups placed earlier in the plan); ties go to the lower median agent
//! latency, then the name. A group with no such controller waits (a shortfall).

use super::model::{CapacityAfter, FailurePolicy, GroupPlacement, TakeoverPlan};
use crate::time::Millis;

/// A peer group to place.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanGroup {
    pub name: String,
    pub priority: u32,
    pub sites: u64,
    pub max_subcloud_rehoming: u32,
    /// (controller, association priority).
    pub associations: Vec<(String, u32)>,
    /// (controller, median agent round trip ms).
    pub agent_latency_ms: Vec<(String, u32)>,
}

/// A controller that may take groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub name: String,
    pub capacity: u64,
    pub reserved_capacity: u64,
    pub managed: u64,
}

/// Inputs besides the groups and survivors.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanContext {
    pub failed: String,
    pub policy: FailurePolicy,
    pub unprotected_sites: u64,
    pub detection_seconds: f64,
    /// Time for agents to fail over and confirm (about one report interval).
    pub evidence_seconds: f64,
    pub now: Millis,
}

pub fn place(ctx: &PlanContext, groups: &[OrphanGroup], survivors: &[Survivor]) -> TakeoverPlan {
    let mut order: Vec<&OrphanGroup> = groups.iter().collect();
    order.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.sites), &a.name).cmp(&(
            b.priority,
            std::cmp::Reverse(b.sites),
            &b.name,
        ))
    });
    let mut load: Vec<u64> = survivors.iter().map(|s| s.managed).collect();
    let mut placements = Vec::with_capacity(order.len());
    let mut shortfall = Vec::new();
    for g in order {
        let latency = |c: &str| {
            g.agent_latency_ms
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, ms)| *ms)
        };
        let mut candidates: Vec<(u32, u32, &str, usize)> = g
            .associations
            .iter()
            .filter(|(c, _)| *c != ctx.failed)
            .filter_map(|(c, prio)| {
                let i = survivors.iter().position(|s| &s.name == c)?;
                Some((*prio, latency(c).unwrap_or(u32::MAX), c.as_str(), i))
            })
            .collect();
        candidates.sort();
        let headroom = |i: usize| {
            let s = &survivors[i];
            s.capacity
                .saturating_sub(s.reserved_capacity)
                .saturating_sub(load[i])
        };
        let chosen = candidates.iter().find(|c| headroom(c.3) >= g.sites);
        let rehoming_seconds = g.sites.div_ceil(u64::from(g.max_subcloud_rehoming.max(1)));
        match chosen {
            Some(&(prio, _, name, i)) => {
                let skipped: Vec<&str> = candidates
                    .iter()
                    .take_while(|c| c.2 != name)
                    .map(|c| c.2)
                    .collect();
                let mut reason = format!("association priority {prio}");
                if let Some(ms) = latency(name) {
                    reason.push_str(&format!(", agents measure {ms} ms"));
                }
                if !skipped.is_empty() {
                    reason.push_str(&format!(
                        "; {} had no room beyond its reserve",
                        skipped.join(", ")
                    ));
                }
                load[i] += g.sites;
                placements.push(GroupPlacement {
                    group: g.name.clone(),
                    sites: g.sites,
                    to: Some(name.to_string()),
                    reason,
                    agent_latency_ms: latency(name),
                    rehoming_seconds,
                });
            }
            None => {
                let reason = if candidates.is_empty() {
                    "no surviving controller is associated with this group".to_string()
                } else {
                    format!(
                        "needs room for {} sites; best headroom beyond reserve is {}",
                        g.sites,
                        candidates.iter().map(|c| headroom(c.3)).max().unwrap_or(0)
                    )
                };
                shortfall.push(g.name.clone());
                placements.push(GroupPlacement {
                    group: g.name.clone(),
                    sites: g.sites,
                    to: None,
                    reason,
                    agent_latency_ms: None,
                    rehoming_seconds: 0,
                });
            }
        }
    }
    let slowest = placements
        .iter()
        .map(|p| p.rehoming_seconds)
        .max()
        .unwrap_or(0);
    TakeoverPlan {
        failed: ctx.failed.clone(),
        policy: ctx.policy,
        capacity: survivors
            .iter()
            .zip(&load)
            .map(|(s, after)| CapacityAfter {
                controller: s.name.clone(),
                capacity: s.capacity,
                reserved_capacity: s.reserved_capacity,
                managed_before: s.managed,
                managed_after: *after,
            })
            .collect(),
        placements,
        shortfall,
        unprotected_sites: ctx.unprotected_sites,
        detection_seconds: ctx.detection_seconds,
        expected_seconds: ctx.detection_seconds + ctx.evidence_seconds + slowest as f64,
        computed_at: ctx.now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PlanContext {
        PlanContext {
            failed: "a".into(),
            policy: FailurePolicy::Rehome,
            unprotected_sites: 3,
            detection_seconds: 3.0,
            evidence_seconds: 1.0,
            now: Millis(0),
        }
    }

    fn group(name: &str, sites: u64, assoc: &[(&str, u32)]) -> OrphanGroup {
        OrphanGroup {
            name: name.into(),
            priority: 0,
            sites,
            max_subcloud_rehoming: 50,
            associations: assoc.iter().map(|(c, p)| (c.to_string(), *p)).collect(),
            agent_latency_ms: vec![],
        }
    }

    fn survivor(name: &str, capacity: u64, reserved: u64, managed: u64) -> Survivor {
        Survivor {
            name: name.into(),
            capacity,
            reserved_capacity: reserved,
            managed,
        }
    }

    #[test]
    fn best_priority_with_room_wins_and_groups_spread_when_one_fills_up() {
        let groups = [
            group("g1", 300, &[("a", 1), ("b", 2), ("c", 3)]),
            group("g2", 300, &[("a", 1), ("b", 2), ("c", 3)]),
        ];
        // b has room for one group beyond its reserve, c for both.
        let survivors = [survivor("b", 1000, 100, 400), survivor("c", 2000, 100, 0)];
        let plan = place(&ctx(), &groups, &survivors);
        let to: Vec<_> = plan.placements.iter().map(|p| p.to.clone()).collect();
        assert_eq!(to, vec![Some("b".into()), Some("c".into())]);
        assert!(plan.shortfall.is_empty());
        assert_eq!(plan.capacity[0].managed_after, 700);
        assert_eq!(plan.capacity[1].managed_after, 300);
        assert!(plan.placements[1].reason.contains("b had no room"));
        assert_eq!(plan.placements[0].rehoming_seconds, 6);
        assert_eq!(plan.expected_seconds, 3.0 + 1.0 + 6.0);
    }

    #[test]
    fn lower_latency_breaks_priority_ties() {
        let mut g = group("g", 10, &[("b", 2), ("c", 2)]);
        g.agent_latency_ms = vec![("b".into(), 80), ("c".into(), 20)];
        let plan = place(
            &ctx(),
            &[g],
            &[survivor("b", 100, 0, 0), survivor("c", 100, 0, 0)],
        );
        assert_eq!(plan.placements[0].to.as_deref(), Some("c"));
        assert_eq!(plan.placements[0].agent_latency_ms, Some(20));
    }

    #[test]
    fn a_shortfall_is_named_and_the_reserve_is_respected() {
        let groups = [
            group("big", 500, &[("b", 1)]),
            group("lonely", 5, &[("z", 1)]),
        ];
        // 600 capacity - 200 reserve - 0 managed = 400 < 500.
        let plan = place(&ctx(), &groups, &[survivor("b", 600, 200, 0)]);
        assert_eq!(
            plan.shortfall,
            vec!["big".to_string(), "lonely".to_string()]
        );
        assert!(plan.placements[0]
            .reason
            .contains("best headroom beyond reserve is 400"));
        assert!(plan.placements[1]
            .reason
            .contains("no surviving controller"));
        assert_eq!(plan.capacity[0].managed_after, 0);
    }

    #[test]
    fn the_failed_controller_is_never_a_candidate() {
        let plan = place(
            &ctx(),
            &[group("g", 1, &[("a", 1)])],
            &[survivor("a", 100, 0, 0)],
        );
        assert_eq!(plan.shortfall, vec!["g".to_string()]);
    }
}
