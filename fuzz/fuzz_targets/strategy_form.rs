//! The orchestration's untrusted inputs: the create form's fields
//! (`NewStrategy::from_params`), a REST body (`NewStrategy` JSON), a maintenance window and the
//! step table's query (`StepQuery::from_params`).
//!
//! Invariants: never panics; a request that passes `validate_shape` has max parallel within
//! its type's limit, retries, backoff and timeout within bounds, and a non-empty window; it
//! survives a JSON round trip unchanged; a parsed window prints back to itself; a parsed step
//! query's query string parses back to it.
#![no_main]

use engine::orchestration::model::{MAX_BACKOFF_SECS, MAX_RETRIES, STEP_TIMEOUT_SECS};
use engine::orchestration::{MaintenanceWindow, NewStrategy, StepQuery};
use engine_fuzz::{as_strs, pairs, pick, rest_text, text};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const FIELDS: &[&str] = &[
    "type",
    "target",
    "target_name",
    "target_query",
    "apply_type",
    "max_parallel",
    "stop_on_failure",
    "release",
    "to_version",
    "expiry_date",
    "subject",
    "for_install",
    "canary_size",
    "canary_soak_secs",
    "canary_approval",
    "budget_max",
    "budget_action",
    "retries",
    "retry_backoff_secs",
    "step_timeout_secs",
    "offline_policy",
    "rollback",
    "window",
];

fn check(s: &NewStrategy) {
    if s.validate_shape().is_ok() {
        if let Some(n) = s.max_parallel {
            assert!(n >= 1 && n <= s.strategy_type.max_parallel_limit());
        }
        assert!(s.retries <= MAX_RETRIES && s.retry_backoff_secs <= MAX_BACKOFF_SECS);
        assert!((STEP_TIMEOUT_SECS.0..=STEP_TIMEOUT_SECS.1).contains(&s.step_timeout_secs));
        if let Some(w) = s.window {
            assert!(w.start_minute != w.end_minute && w.start_minute < 1440 && w.end_minute < 1440);
        }
        let json = serde_json::to_string(s).unwrap();
        assert_eq!(&serde_json::from_str::<NewStrategy>(&json).unwrap(), s);
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0..=3)? {
        0 => {
            let p = pairs(u, FIELDS, |u, key| match key {
                "type" => pick(
                    u,
                    &[
                        "sw-deploy",
                        "kubernetes",
                        "kube-rootca-update",
                        "firmware",
                        "prestage",
                    ],
                ),
                "target" => pick(u, &["all", "subcloud", "group", "peer_group", "filter"]),
                _ => Ok(text(u)?.to_string()),
            })?;
            if let Ok(s) = NewStrategy::from_params(as_strs(&p)) {
                check(&s);
            }
        }
        1 => {
            if let Ok(s) = serde_json::from_str::<NewStrategy>(rest_text(u)) {
                check(&s);
            }
        }
        2 => {
            if let Ok(w) = MaintenanceWindow::parse(rest_text(u)) {
                assert_eq!(MaintenanceWindow::parse(&w.to_string()), Ok(w));
            }
        }
        _ => {
            let p = pairs(u, &["state", "wave", "page", "per_page"], |u, _| {
                Ok(text(u)?.to_string())
            })?;
            if let Ok(q) = StepQuery::from_params(as_strs(&p)) {
                let qs = q.to_query_string();
                let back = if qs.is_empty() {
                    Vec::new()
                } else {
                    engine_fuzz::split_query(&format!("?{qs}"))
                };
                assert_eq!(StepQuery::from_params(as_strs(&back)), Ok(q));
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
