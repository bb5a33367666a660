//! `SubcloudQuery::from_params`: the subcloud list's URL query parameters.
//!
//! Invariants: never panics; an error names one of the query's parameters; `Ok(q)` passes
//! `validate()`, `to_params()` parses back to `q`, and so does `to_query_string()` once
//! percent-decoded (which must use only unreserved characters, `/` and `%XX`).
#![no_main]

use engine::fleet::{
    AvailabilityStatus, DeployClass, DeployStatus, ManagementState, SortDir, SortKey,
    SubcloudQuery, SyncStatus,
};
use engine::health::AlarmStatus;
use engine_fuzz::{as_strs, number, pairs, pick, split_query, text};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn spellings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| as_str(*v)).collect()
}

fn value(u: &mut Unstructured<'_>, key: &str) -> Result<String> {
    let known: Vec<&str> = match key {
        "availability" => spellings(AvailabilityStatus::ALL, AvailabilityStatus::as_str),
        "management" => spellings(ManagementState::ALL, ManagementState::as_str),
        "deploy" => spellings(DeployStatus::ALL, DeployStatus::as_str),
        "deploy_class" => spellings(DeployClass::ALL, DeployClass::as_str),
        "sync" => spellings(SyncStatus::ALL, SyncStatus::as_str),
        "alarm" => spellings(AlarmStatus::ALL, AlarmStatus::as_str),
        "sort" => spellings(SortKey::ALL, SortKey::as_str),
        "dir" => spellings(SortDir::ALL, SortDir::as_str),
        _ => Vec::new(),
    };
    Ok(match u.int_in_range(0u8..=3)? {
        0 | 1 if !known.is_empty() => pick(u, &known)?,
        0 if key == "page" || key == "per_page" => number(u)?,
        1 => String::new(),
        _ => text(u)?.to_string(),
    })
}

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let input = pairs(u, &SubcloudQuery::PARAMS, value)?;
    match SubcloudQuery::from_params(as_strs(&input)) {
        Err(e) => {
            assert!(
                SubcloudQuery::PARAMS.contains(&e.field.as_str()),
                "error names no parameter: {e:?} for {input:?}"
            );
            assert!(!e.message.is_empty(), "empty message for {input:?}");
        }
        Ok(q) => {
            assert_eq!(q.validate(), Ok(()), "accepted but invalid: {q:?}");

            let params = q.to_params();
            for (k, v) in &params {
                assert!(SubcloudQuery::PARAMS.contains(k), "unknown key {k:?}");
                assert!(!v.trim().is_empty(), "empty value for {k:?} in {q:?}");
            }
            let back = SubcloudQuery::from_params(params.iter().map(|(k, v)| (*k, v.as_str())));
            assert_eq!(back.as_ref(), Ok(&q), "to_params {params:?} of {q:?}");

            let qs = q.to_query_string();
            assert_eq!(qs.is_empty(), params.is_empty(), "{qs:?} vs {params:?}");
            let decoded = split_query(&qs);
            let back = SubcloudQuery::from_params(as_strs(&decoded));
            assert_eq!(back.as_ref(), Ok(&q), "to_query_string {qs:?} of {q:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
