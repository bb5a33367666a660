//! The still demo's one finished strategy: a demo without a simulator (where no agent could
//! ever run a step) still has a rollout for the orchestration pages to show.

use crate::auth::Actor;
use crate::error::{Error, Result, ValidationError};
use crate::orchestration::{
    NewStrategy, OfflinePolicy, StrategyAction, StrategyState, StrategyType, Target,
};
use crate::time::Millis;
use crate::Engine;

/// The target of the demo's strategy: the outage city's offline sites.
pub const DEMO_STRATEGY_TARGET: &str = "availability=offline&q=lyon";
/// The release the demo's strategy prestages.
pub const DEMO_STRATEGY_RELEASE: &str = "26.03";

/// The demo's strategy, as [`Engine::seed_demo_strategy`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoStrategy {
    pub id: i64,
    pub state: StrategyState,
    /// Created by this call (not found from an earlier seeding).
    pub created: bool,
}

/// What the demo's strategy asks for: prestage [`DEMO_STRATEGY_RELEASE`] to
/// [`DEMO_STRATEGY_TARGET`], skipping the sites that are offline when their turn comes.
pub fn demo_strategy_spec() -> NewStrategy {
    let mut s = NewStrategy::new(
        StrategyType::Prestage,
        Target::Filter {
            query: DEMO_STRATEGY_TARGET.into(),
        },
    );
    s.release = Some(DEMO_STRATEGY_RELEASE.into());
    s.offline_policy = OfflinePolicy::Skip;
    s
}

impl Engine {
    /// Gives a demo without a simulator (where no agent could ever run a step) one finished
    /// strategy, so the orchestration pages have a rollout to show: [`demo_strategy_spec`],
    /// created, applied and run to its end by the engine's own runner, which skips each target
    /// site because it is offline. Every change goes through the normal API (audit log and
    /// event each). Runs orchestrator ticks: any other active strategy in this store advances
    /// too, as the controller's own loop would advance it once serving.
    ///
    /// Running it again changes nothing: a strategy with this spec created by the system is
    /// found and left as it is (one an interrupted seeding left unfinished is run to its end).
    /// `None` when the fleet has no such site (a demo of a few sites).
    pub async fn seed_demo_strategy(&self) -> Result<Option<DemoStrategy>> {
        let spec = demo_strategy_spec();
        let actor = Actor::system();
        let found: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM strategies WHERE created_by = $1 AND strategy_type = $2 \
             AND target = $3 AND args = $4 ORDER BY id LIMIT 1",
        )
        .bind(&actor.name)
        .bind(spec.strategy_type.as_str())
        .bind(spec.target.describe())
        .bind(spec.describe_args())
        .fetch_optional(self.store.pool())
        .await?;
        let (id, mut state, created) = match found {
            Some((id, state)) => (id, parse_state(&state)?, false),
            None => match self.create_strategy(&actor, &spec).await {
                Ok(id) => (id, StrategyState::Initial, true),
                Err(Error::Validation(e)) if e.field == "target" => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        if state == StrategyState::Initial {
            state = self
                .strategy_action(&actor, id, StrategyAction::Apply)
                .await?;
        }
        // One tick per wave skips its sites, the next closes the wave and starts the following
        // one; a few more are slack.
        let waves: i64 = sqlx::query_scalar("SELECT wave_count FROM strategies WHERE id = $1")
            .bind(id)
            .fetch_one(self.store.pool())
            .await?;
        let mut ticks = 0;
        while !state.is_terminal() && ticks <= waves + 3 {
            self.orchestration_tick(Millis::now()).await?;
            let s: String = sqlx::query_scalar("SELECT state FROM strategies WHERE id = $1")
                .bind(id)
                .fetch_one(self.store.pool())
                .await?;
            state = parse_state(&s)?;
            ticks += 1;
        }
        Ok(Some(DemoStrategy { id, state, created }))
    }
}

fn parse_state(s: &str) -> Result<StrategyState> {
    s.parse()
        .map_err(|e: ValidationError| Error::Internal(format!("bad strategy state in store: {e}")))
}

/// The demo's strategy on a real store, both backends.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::demo::{generate, DEFAULT_SUBCLOUDS, OUTAGE_CITY};
    use crate::fleet::AvailabilityStatus;
    use crate::store::Backend;
    use crate::testing::TestDb;

    crate::both_backends!(
        the_demo_strategy_is_finished_deterministic_and_seeded_once,
        a_fleet_without_the_target_sites_gets_no_strategy,
    );

    /// The outage city's offline sites among the first `n` of the demo fleet.
    fn targets(n: u32) -> Vec<String> {
        let mut v: Vec<String> = generate(n)
            .into_iter()
            .filter(|s| s.city.name == OUTAGE_CITY && s.availability == AvailabilityStatus::Offline)
            .map(|s| s.name)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_default_fleet_has_target_sites() {
        assert!(targets(DEFAULT_SUBCLOUDS).len() >= 3);
    }

    async fn the_demo_strategy_is_finished_deterministic_and_seeded_once(b: Backend) {
        let db = TestDb::new(b).await;
        let engine = db.engine().await;
        engine.seed_demo(DEFAULT_SUBCLOUDS).await.unwrap();
        let mut events = engine.events().subscribe();
        let d = engine
            .seed_demo_strategy()
            .await
            .unwrap()
            .expect("a strategy");
        assert!(d.created);
        assert_eq!(d.state, StrategyState::Complete);

        let actor = Actor::system();
        let detail = engine.strategy_detail(&actor, d.id).await.unwrap();
        let want = targets(DEFAULT_SUBCLOUDS);
        assert_eq!(detail.summary.total, want.len() as u64);
        assert_eq!(detail.summary.skipped, want.len() as u64);
        assert_eq!(detail.summary.complete + detail.summary.failed, 0);
        assert!(detail.summary.finished_at.is_some());
        let q = crate::orchestration::StepQuery {
            per_page: 200,
            ..Default::default()
        };
        let steps = engine.strategy_steps(&actor, d.id, &q).await.unwrap();
        let mut names: Vec<String> = steps.rows.iter().map(|r| r.subcloud.clone()).collect();
        names.sort();
        assert_eq!(names, want);
        for r in &steps.rows {
            assert_eq!(
                r.state,
                crate::orchestration::StepState::Skipped,
                "{}",
                r.subcloud
            );
            assert!(
                r.details.contains("offline"),
                "{}: {}",
                r.subcloud,
                r.details
            );
        }
        // Every state change went through the engine: audited and published.
        let audit = engine.recent_audit(50).await.unwrap();
        let actions: Vec<&str> = audit
            .iter()
            .filter(|a| a.entry.target == format!("strategy:{}", d.id))
            .map(|a| a.entry.action.as_str())
            .collect();
        for a in ["strategy.created", "strategy.apply", "strategy.completed"] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        let mut states = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let crate::events::Event::StrategyChanged { id, state, .. } = e {
                assert_eq!(id, d.id);
                states.push(state);
            }
        }
        assert_eq!(states.first().map(String::as_str), Some("initial"));
        assert_eq!(states.last().map(String::as_str), Some("complete"));

        // Seeding again (the demo restarted on the same store) changes nothing.
        let audited = engine.recent_audit(1000).await.unwrap().len();
        engine.seed_demo(DEFAULT_SUBCLOUDS).await.unwrap();
        let again = engine.seed_demo_strategy().await.unwrap().unwrap();
        assert_eq!(
            again,
            DemoStrategy {
                created: false,
                ..d
            }
        );
        assert!(events.try_recv().is_err(), "no change, no event");
        assert_eq!(engine.recent_audit(1000).await.unwrap().len(), audited);
        assert_eq!(engine.strategy_detail(&actor, d.id).await.unwrap(), detail);
        let page = engine.strategies(&actor, 1, 10).await.unwrap();
        assert_eq!(page.items.len(), 1);
    }

    async fn a_fleet_without_the_target_sites_gets_no_strategy(b: Backend) {
        let n = 20;
        assert!(targets(n).is_empty());
        let db = TestDb::new(b).await;
        let engine = db.engine().await;
        engine.seed_demo(n).await.unwrap();
        let audited = engine.recent_audit(100).await.unwrap().len();
        assert_eq!(engine.seed_demo_strategy().await.unwrap(), None);
        assert_eq!(engine.recent_audit(100).await.unwrap().len(), audited);
        let page = engine.strategies(&Actor::system(), 1, 10).await.unwrap();
        assert!(page.items.is_empty());
    }
}
