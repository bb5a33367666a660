//! The agent protocol's untrusted inputs: a report body (JSON from any site on the network)
//! and the bearer secret.
//!
//! Invariants: never panics; a report that parses and validates has every free text bounded
//! and free of control characters, at most the allowed alarms, no alarm key twice and percents
//! at most 100; a secret that parses is exactly `mms_<id>_<64 hex>` and prints back to itself.
#![no_main]

use engine::agents::wire::{Report, SecretParts, MAX_REPORTED_ALARMS, MAX_TEXT};
use libfuzzer_sys::fuzz_target;

fn clean(s: &str) -> bool {
    s.len() <= MAX_TEXT && !s.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = SecretParts::parse(s) {
            assert!(p.subcloud_id >= 0);
            assert_eq!(format!("mms_{}_{}", p.subcloud_id, p.random), s);
        }
    }
    let Ok(r) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    if r.validate().is_ok() {
        assert!(r.seq >= 1 && r.seq <= i64::MAX as u64);
        assert!(clean(&r.software_version) && clean(&r.agent_version));
        assert!(r.alarms.len() <= MAX_REPORTED_ALARMS);
        for (i, a) in r.alarms.iter().enumerate() {
            assert!(clean(&a.entity) && clean(&a.reason));
            assert!(!r.alarms[..i]
                .iter()
                .any(|b| b.alarm_id == a.alarm_id && b.entity == a.entity));
        }
        assert!(r
            .commands
            .iter()
            .all(|c| c.percent <= 100 && clean(&c.message)));
    }
});
