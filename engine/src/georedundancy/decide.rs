//! The takeover decision, pure: given what this controller knows now (which peers failed,
//! their policies, the agents' evidence, the placement plan), which groups move where. The
//! runtime loads the inputs, calls these functions and carries out the decisions (the
//! takeover transaction, orders to peers, alarms); nothing here locks, reads or writes.
//!
//! The rules these functions hold, each tested below:
//! 1. A failed peer that an operator disabled, or that announced maintenance still running,
//!    is left alone: no alarm, no move.
//! 2. Policy `alarm`: the survivors only raise "waiting for migrate"; nothing moves.
//! 3. One decider per failed peer: with `rehome` the alive controller with the smallest name
//!    (every survivor computes the same), with `delegate` the named delegate if it is alive;
//!    a decider in maintenance itself decides nothing.
//! 4. Evidence before action: a group moves only when at least `quorum_percent` of its online
//!    sites (at least one agent) confirm, here or in fresh heartbeats of available peers, that
//!    they cannot reach the failed owner. Evidence about another owner never counts.
//! 5. No repeated order: a group ordered in the last [`REORDER_AFTER_MS`] is not decided again.
//! 6. The placement (priority, capacity beyond reserve, latency) is [`super::plan::place`]'s;
//!    a group the plan cannot place waits, and the shortfall is alarmed.

use std::collections::HashMap;

use super::model::{FailurePolicy, GroupEvidence, TakeoverPlan};
use crate::time::Millis;

/// A group ordered this recently is not decided again (its order is in flight).
pub const REORDER_AFTER_MS: i64 = 5_000;

/// A peer this controller sees as failed, and what it last said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPeer {
    pub name: String,
    /// An operator disabled it (`admin = disabled`): no automatic action.
    pub disabled: bool,
    /// Its own announced maintenance (from its last heartbeat).
    pub maintenance_until: Option<Millis>,
    pub policy: FailurePolicy,
    pub delegate_to: Option<String>,
}

/// What to do about one failed peer's enabled groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing (disabled, in maintenance, or another controller decides).
    Nothing,
    /// Policy `alarm`: raise "waiting for migrate" and wait for an operator.
    AlarmAndWait,
    /// This controller decides: weigh the evidence and place the groups.
    Decide,
}

/// Rules 1 to 3. `alive`: the available peers (never the failed one); `this` is added.
pub fn step_for(
    peer: &FailedPeer,
    this: &str,
    alive: &[&str],
    maintenance_here: bool,
    now: Millis,
) -> Step {
    if peer.disabled || peer.maintenance_until.is_some_and(|u| u.0 > now.0) {
        return Step::Nothing;
    }
    let decider = match peer.policy {
        FailurePolicy::Alarm => return Step::AlarmAndWait,
        FailurePolicy::Rehome => alive
            .iter()
            .copied()
            .filter(|n| *n != peer.name)
            .chain(std::iter::once(this))
            .min(),
        FailurePolicy::Delegate => peer
            .delegate_to
            .as_deref()
            .filter(|d| *d != peer.name && (*d == this || alive.contains(d))),
    };
    if decider == Some(this) && !maintenance_here {
        Step::Decide
    } else {
        Step::Nothing
    }
}

/// Agents' evidence a peer reported in its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvidence<'a> {
    pub available: bool,
    pub last_ok: Option<Millis>,
    pub evidence: &'a [GroupEvidence],
}

/// Per group name: agents that told available peers, recently, they cannot reach `owner`.
pub fn remote_evidence(
    peers: &[PeerEvidence<'_>],
    owner: &str,
    window_ms: i64,
    now: Millis,
) -> HashMap<String, u64> {
    let mut sum: HashMap<String, u64> = HashMap::new();
    for p in peers {
        if !p.available || p.last_ok.is_none_or(|t| now.0 - t.0 > window_ms) {
            continue;
        }
        for e in p.evidence.iter().filter(|e| e.owner == owner) {
            *sum.entry(e.group.clone()).or_default() += e.owner_unreachable;
        }
    }
    sum
}

/// Agents that must confirm, of `online` sites at `quorum_percent`: at least one.
pub fn quorum(online: u64, quorum_percent: u32) -> u64 {
    online
        .saturating_mul(u64::from(quorum_percent))
        .div_ceil(100)
        .max(1)
}

/// One orphaned group and its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvidenceCount {
    pub group: String,
    /// Sites online in the group (the quorum's base).
    pub online: u64,
    /// Agents confirming here plus those confirming at peers.
    pub seen: u64,
}

/// A group with enough evidence to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligible {
    pub group: String,
    pub seen: u64,
    pub need: u64,
}

/// Rules 4 and 5: the groups that may move now, in the order given.
pub fn eligible(
    groups: &[GroupEvidenceCount],
    quorum_percent: u32,
    ordered: &HashMap<String, Millis>,
    now: Millis,
) -> Vec<Eligible> {
    groups
        .iter()
        .filter_map(|g| {
            let need = quorum(g.online, quorum_percent);
            if g.seen < need {
                return None;
            }
            if ordered
                .get(&g.group)
                .is_some_and(|t| now.0 - t.0 < REORDER_AFTER_MS)
            {
                return None;
            }
            Some(Eligible {
                group: g.group.clone(),
                seen: g.seen,
                need,
            })
        })
        .collect()
}

/// One group's move, as decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub group: String,
    /// The controller that takes it (this one, or a peer ordered to).
    pub to: String,
    /// Why, for the audit log and the ownership history.
    pub reason: String,
}

/// Rule 6: the moves of a plan over eligible groups; placements without a target wait.
pub fn decisions(failed: &str, plan: &TakeoverPlan, eligible: &[Eligible]) -> Vec<Decision> {
    plan.placements
        .iter()
        .filter_map(|p| {
            let to = p.to.clone()?;
            let e = eligible.iter().find(|e| e.group == p.group)?;
            Some(Decision {
                group: p.group.clone(),
                to,
                reason: format!(
                    "{failed} unreachable; {} agents confirm (quorum {}); {}",
                    e.seen, e.need, p.reason
                ),
            })
        })
        .collect()
}

/// The capacity-shortfall alarm's text for a plan, or `None` to clear it.
pub fn shortfall_text(failed: &str, plan: &TakeoverPlan) -> Option<String> {
    (!plan.shortfall.is_empty()).then(|| {
        format!(
            "takeover of {failed}: no capacity beyond reserve for {}; they wait",
            plan.shortfall.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::georedundancy::model::GroupPlacement;

    fn failed(policy: FailurePolicy) -> FailedPeer {
        FailedPeer {
            name: "sc-b".into(),
            disabled: false,
            maintenance_until: None,
            policy,
            delegate_to: None,
        }
    }

    const NOW: Millis = Millis(1_000_000);

    #[test]
    fn one_decider_by_policy() {
        use FailurePolicy::*;
        use Step::*;
        // (policy, delegate, this, alive peers, maintenance here) -> step
        type Case<'a> = (
            FailurePolicy,
            Option<&'a str>,
            &'a str,
            &'a [&'a str],
            bool,
            Step,
        );
        let cases: &[Case<'_>] = &[
            // rehome: the smallest alive name decides, this controller included.
            (Rehome, None, "sc-a", &["sc-c"], false, Decide),
            (Rehome, None, "sc-c", &["sc-a"], false, Nothing),
            (Rehome, None, "sc-c", &[], false, Decide),
            // the failed peer never counts as alive, even if listed.
            (Rehome, None, "sc-c", &["sc-b"], false, Decide),
            // a decider in maintenance decides nothing.
            (Rehome, None, "sc-a", &["sc-c"], true, Nothing),
            // delegate: only the named, alive delegate.
            (Delegate, Some("sc-c"), "sc-c", &["sc-a"], false, Decide),
            (Delegate, Some("sc-c"), "sc-a", &["sc-c"], false, Nothing),
            (Delegate, Some("sc-d"), "sc-a", &["sc-c"], false, Nothing),
            (Delegate, Some("sc-b"), "sc-b", &[], false, Nothing),
            (Delegate, None, "sc-a", &[], false, Nothing),
            // alarm: everyone alarms, nobody moves anything.
            (Alarm, None, "sc-a", &["sc-c"], false, AlarmAndWait),
            (Alarm, None, "sc-c", &["sc-a"], true, AlarmAndWait),
        ];
        for (policy, delegate, this, alive, maint, want) in cases {
            let mut p = failed(*policy);
            p.delegate_to = delegate.map(str::to_string);
            assert_eq!(
                step_for(&p, this, alive, *maint, NOW),
                *want,
                "{policy:?} delegate {delegate:?} at {this} with {alive:?}, maintenance {maint}"
            );
        }
    }

    #[test]
    fn disabled_or_announced_maintenance_means_no_action_at_all() {
        for policy in FailurePolicy::ALL.iter() {
            let mut p = failed(*policy);
            p.disabled = true;
            assert_eq!(step_for(&p, "sc-a", &[], false, NOW), Step::Nothing);
            let mut p = failed(*policy);
            p.maintenance_until = Some(Millis(NOW.0 + 1));
            assert_eq!(step_for(&p, "sc-a", &[], false, NOW), Step::Nothing);
        }
        // Maintenance that has ended no longer protects it.
        let mut p = failed(FailurePolicy::Rehome);
        p.maintenance_until = Some(NOW);
        assert_eq!(step_for(&p, "sc-a", &[], false, NOW), Step::Decide);
    }

    #[test]
    fn quorum_is_a_rounded_up_share_and_never_zero() {
        for (online, pct, need) in [
            (0, 50, 1),
            (1, 50, 1),
            (10, 50, 5),
            (11, 50, 6),
            (3, 100, 3),
            (7, 1, 1),
            (200, 0, 1),
            (u64::MAX, 100, u64::MAX / 100 + 1),
        ] {
            assert_eq!(quorum(online, pct), need, "{online} online at {pct} %");
        }
    }

    fn ev(group: &str, owner: &str, n: u64) -> GroupEvidence {
        GroupEvidence {
            group: group.into(),
            owner: owner.into(),
            owner_unreachable: n,
        }
    }

    #[test]
    fn remote_evidence_counts_only_fresh_available_peers_about_this_owner() {
        let fresh = [
            ev("pg-1", "sc-b", 3),
            ev("pg-2", "sc-b", 1),
            ev("pg-1", "sc-x", 9),
        ];
        let stale = [ev("pg-1", "sc-b", 100)];
        let down = [ev("pg-1", "sc-b", 1000)];
        let peers = [
            PeerEvidence {
                available: true,
                last_ok: Some(Millis(NOW.0 - 1_000)),
                evidence: &fresh,
            },
            PeerEvidence {
                available: true,
                last_ok: Some(Millis(NOW.0 - 30_001)),
                evidence: &stale,
            },
            PeerEvidence {
                available: false,
                last_ok: Some(NOW),
                evidence: &down,
            },
            PeerEvidence {
                available: true,
                last_ok: None,
                evidence: &down,
            },
        ];
        let sum = remote_evidence(&peers, "sc-b", 30_000, NOW);
        assert_eq!(sum.get("pg-1"), Some(&3));
        assert_eq!(sum.get("pg-2"), Some(&1));
        assert_eq!(sum.len(), 2);
    }

    #[test]
    fn groups_move_only_with_quorum_and_not_twice_in_a_row() {
        let groups = [
            GroupEvidenceCount {
                group: "short".into(),
                online: 10,
                seen: 4,
            },
            GroupEvidenceCount {
                group: "enough".into(),
                online: 10,
                seen: 5,
            },
            GroupEvidenceCount {
                group: "all-offline".into(),
                online: 0,
                seen: 0,
            },
            GroupEvidenceCount {
                group: "ordered".into(),
                online: 2,
                seen: 2,
            },
            GroupEvidenceCount {
                group: "ordered-long-ago".into(),
                online: 2,
                seen: 2,
            },
        ];
        let ordered = HashMap::from([
            ("ordered".to_string(), Millis(NOW.0 - REORDER_AFTER_MS + 1)),
            (
                "ordered-long-ago".to_string(),
                Millis(NOW.0 - REORDER_AFTER_MS),
            ),
        ]);
        let e = eligible(&groups, 50, &ordered, NOW);
        assert_eq!(
            e,
            vec![
                Eligible {
                    group: "enough".into(),
                    seen: 5,
                    need: 5
                },
                Eligible {
                    group: "ordered-long-ago".into(),
                    seen: 2,
                    need: 1
                },
            ]
        );
    }

    fn placement(group: &str, to: Option<&str>) -> GroupPlacement {
        GroupPlacement {
            group: group.into(),
            sites: 10,
            to: to.map(str::to_string),
            reason: format!("why {group}"),
            agent_latency_ms: None,
            rehoming_seconds: 1,
        }
    }

    #[test]
    fn decisions_follow_the_plan_for_eligible_groups_only() {
        let plan = TakeoverPlan {
            failed: "sc-b".into(),
            policy: FailurePolicy::Rehome,
            placements: vec![
                placement("pg-1", Some("sc-a")),
                placement("pg-2", Some("sc-c")),
                placement("pg-3", None),
                placement("pg-not-eligible", Some("sc-a")),
            ],
            capacity: Vec::new(),
            shortfall: vec!["pg-3".into()],
            unprotected_sites: 0,
            detection_seconds: 0.0,
            expected_seconds: 0.0,
            computed_at: NOW,
        };
        let eligible = ["pg-1", "pg-2", "pg-3"].map(|g| Eligible {
            group: g.into(),
            seen: 4,
            need: 3,
        });
        let d = decisions("sc-b", &plan, &eligible);
        assert_eq!(
            d,
            vec![
                Decision {
                    group: "pg-1".into(),
                    to: "sc-a".into(),
                    reason: "sc-b unreachable; 4 agents confirm (quorum 3); why pg-1".into()
                },
                Decision {
                    group: "pg-2".into(),
                    to: "sc-c".into(),
                    reason: "sc-b unreachable; 4 agents confirm (quorum 3); why pg-2".into()
                },
            ]
        );
        assert_eq!(
            shortfall_text("sc-b", &plan).as_deref(),
            Some("takeover of sc-b: no capacity beyond reserve for pg-3; they wait")
        );
        let placed = TakeoverPlan {
            shortfall: Vec::new(),
            ..plan
        };
        assert_eq!(shortfall_text("sc-b", &placed), None);
    }
}
