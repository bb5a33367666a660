//! Turning a strategy and its target sites into ordered waves, and estimating how long they
//! take. Pure functions: the preview, the create path and the property tests share them.

use serde::{Deserialize, Serialize};

use super::model::{ApplyType, NewStrategy, Target};

/// One target site as the planner sees it. Callers pass sites ordered by group, then name.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSite {
    pub subcloud_id: i64,
    pub name: String,
    pub group_id: i64,
    pub group_name: String,
    pub group_apply_type: ApplyType,
    pub group_max_parallel: u32,
}

/// A wave: sites run up to `max_parallel` at a time; waves run one after another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWave {
    pub index: u32,
    pub name: String,
    pub apply_type: ApplyType,
    pub max_parallel: u32,
    /// Indices into the site list, in execution order.
    pub sites: Vec<usize>,
}

/// Orders `sites` into waves: the canary wave first (if any), then one wave per subcloud group
/// in group order, each with its group's own apply type and max parallel unless the strategy
/// overrides them. Every site lands in exactly one wave.
pub fn plan_waves(spec: &NewStrategy, sites: &[PlanSite]) -> Vec<PlannedWave> {
    let limit = spec.strategy_type.max_parallel_limit();
    let mut waves = Vec::new();
    let mut start = 0;
    if let Some(c) = &spec.canary {
        let n = usize::try_from(c.size.of(sites.len() as u64))
            .unwrap_or(usize::MAX)
            .min(sites.len());
        if n > 0 && !matches!(spec.target, Target::Subcloud { .. }) {
            let apply_type = spec.apply_type.unwrap_or(ApplyType::Parallel);
            let max_parallel = match apply_type {
                ApplyType::Serial => 1,
                ApplyType::Parallel => spec
                    .max_parallel
                    .unwrap_or(u32::MAX)
                    .min(u32::try_from(n).unwrap_or(u32::MAX))
                    .min(limit),
            };
            waves.push(PlannedWave {
                index: 0,
                name: "canary".into(),
                apply_type,
                max_parallel,
                sites: (0..n).collect(),
            });
            start = n;
        }
    }
    let mut i = start;
    while i < sites.len() {
        let group = sites[i].group_id;
        let mut j = i;
        while j < sites.len() && sites[j].group_id == group {
            j += 1;
        }
        let s = &sites[i];
        // Settings given on the strategy override every group's (apply type then defaults
        // to parallel); otherwise each group brings its own.
        let overridden = spec.apply_type.is_some() || spec.max_parallel.is_some();
        let apply_type = match (overridden, spec.apply_type) {
            (_, Some(t)) => t,
            (true, None) => ApplyType::Parallel,
            (false, None) => s.group_apply_type,
        };
        let max_parallel = match apply_type {
            ApplyType::Serial => 1,
            ApplyType::Parallel => spec
                .max_parallel
                .unwrap_or(s.group_max_parallel)
                .clamp(1, limit),
        };
        waves.push(PlannedWave {
            index: u32::try_from(waves.len()).unwrap_or(u32::MAX),
            name: format!("group {}", s.group_name),
            apply_type,
            max_parallel,
            sites: (i..j).collect(),
        });
        i = j;
    }
    waves
}

/// Time for `sites` steps of `step_ms` each, `max_parallel` at a time.
pub fn wave_eta_ms(sites: u64, max_parallel: u32, step_ms: i64) -> i64 {
    let batches = sites.div_ceil(u64::from(max_parallel.max(1)));
    i64::try_from(batches)
        .unwrap_or(i64::MAX)
        .saturating_mul(step_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::model::{Amount, Canary, CanaryApproval, StrategyType};
    use proptest::prelude::*;

    fn site(i: usize, group: i64, mp: u32) -> PlanSite {
        PlanSite {
            subcloud_id: i as i64 + 1,
            name: format!("s{i:05}"),
            group_id: group,
            group_name: format!("g{group}"),
            group_apply_type: ApplyType::Parallel,
            group_max_parallel: mp,
        }
    }

    #[test]
    fn groups_in_order_with_their_own_settings() {
        let mut sites: Vec<PlanSite> = (0..5).map(|i| site(i, 1, 2)).collect();
        sites.extend((5..8).map(|i| PlanSite {
            group_apply_type: ApplyType::Serial,
            ..site(i, 2, 10)
        }));
        let spec = NewStrategy::new(StrategyType::SwDeploy, Target::All);
        let w = plan_waves(&spec, &sites);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].max_parallel, w[0].sites.len()), (2, 5));
        assert_eq!((w[1].max_parallel, w[1].apply_type), (1, ApplyType::Serial));
        assert_eq!(wave_eta_ms(5, 2, 100), 300);
        // A max parallel on the strategy overrides every group, serial ones included.
        let mut wide = spec.clone();
        wide.max_parallel = Some(4);
        let w = plan_waves(&wide, &sites);
        assert_eq!(
            (w[1].apply_type, w[1].max_parallel),
            (ApplyType::Parallel, 4)
        );
    }

    proptest! {
        /// Every site is planned exactly once, in order; waves respect the type's limit;
        /// the canary wave is first and sized as asked.
        #[test]
        fn every_site_exactly_once(
            groups in proptest::collection::vec((1u32..8, 0usize..40), 1..6),
            canary in proptest::option::of(prop_oneof![(1u32..60).prop_map(Amount::Sites), (1u32..=100).prop_map(Amount::Percent)]),
            max_parallel in proptest::option::of(1u32..6000),
            prestage in any::<bool>(),
        ) {
            let mut sites = Vec::new();
            for (g, (mp, n)) in groups.iter().enumerate() {
                for _ in 0..*n {
                    let i = sites.len();
                    sites.push(site(i, g as i64 + 1, *mp));
                }
            }
            let t = if prestage { StrategyType::Prestage } else { StrategyType::SwDeploy };
            let mut spec = NewStrategy::new(t, Target::All);
            spec.max_parallel = max_parallel.map(|m| m.min(t.max_parallel_limit()));
            spec.canary = canary.map(|size| Canary { size, soak_secs: 0, approval: CanaryApproval::Automatic });
            let waves = plan_waves(&spec, &sites);
            let order: Vec<usize> = waves.iter().flat_map(|w| w.sites.iter().copied()).collect();
            prop_assert_eq!(order, (0..sites.len()).collect::<Vec<_>>());
            for (i, w) in waves.iter().enumerate() {
                prop_assert_eq!(w.index as usize, i);
                prop_assert!(!w.sites.is_empty());
                prop_assert!(w.max_parallel >= 1 && w.max_parallel <= t.max_parallel_limit());
            }
            if let (Some(c), false) = (canary, sites.is_empty()) {
                let n = (c.of(sites.len() as u64) as usize).min(sites.len());
                prop_assert_eq!(&waves[0].name, "canary");
                prop_assert_eq!(waves[0].sites.len(), n);
            }
        }
    }
}
