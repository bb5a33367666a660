//! `AuditQuery::from_params`: the audit log view's URL query parameters.
//!
//! Invariants: never panics; an error names one of the query's parameters; `Ok(q)` passes
//! `validate()`; `from` is the instant given and `to` the last millisecond of the day, minute
//! or second given (by how many `:`-separated fields its time has, however they are
//! written); and `to_query_string()`, percent-decoded, parses back to `q`.
#![no_main]

use engine::audit::AuditQuery;
use engine::time::Millis;
use engine_fuzz::{as_strs, number, pairs, pick, split_query, text};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A date or date-time in one of the shapes HTML inputs send, with fields sometimes out of
/// range (month 13, day 31 in April, hour 24, year 0 or 10000).
fn date(u: &mut Unstructured<'_>) -> Result<String> {
    let y = u.int_in_range(0u32..=10_000)?;
    let m = u.int_in_range(0u32..=13)?;
    let d = u.int_in_range(0u32..=32)?;
    let h = u.int_in_range(0u32..=24)?;
    let mi = u.int_in_range(0u32..=60)?;
    let s = u.int_in_range(0u32..=60)?;
    let mut out = match u.int_in_range(0u8..=4)? {
        0 => format!("{y:04}-{m:02}-{d:02}"),
        1 => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}"),
        2 => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        // Unpadded or over-padded fields, which `Millis::parse_iso` also accepts.
        3 => format!("{y}-{m}-{d}T{h}:{mi}:{s}"),
        _ => format!("{y}-{m}-{d}T{h:03}:{mi:02}"),
    };
    if u.arbitrary()? {
        out.push('Z');
    }
    Ok(out)
}

fn value(u: &mut Unstructured<'_>, key: &str) -> Result<String> {
    Ok(match (key, u.int_in_range(0u8..=3)?) {
        ("from" | "to", 0 | 1) => date(u)?,
        ("page" | "per_page", 0 | 1) => number(u)?,
        ("action", 0) => pick(u, &["user.", "user.create", "subcloud.manage", "login"])?,
        ("actor", 0) => pick(u, &["admin", "system", "noc.operator-1"])?,
        (_, 2) => String::new(),
        _ => text(u)?.to_string(),
    })
}

/// The last non-empty value given for `key`, trimmed (later parameters override earlier).
fn last<'a>(input: &'a [(String, String)], key: &str) -> Option<&'a str> {
    input
        .iter()
        .rev()
        .find(|(k, v)| k == key && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// What `to=v` means: the last millisecond of the day, minute or second it names.
fn end_of(v: &str) -> Option<Millis> {
    let start = Millis::parse_iso(v)?;
    let slack = match v.split_once('T') {
        None => 86_399_999,
        Some((_, time)) if time.matches(':').count() == 1 => 59_999,
        Some(_) => 999,
    };
    Some(Millis(start.0 + slack))
}

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let input = pairs(u, &AuditQuery::PARAMS, value)?;
    match AuditQuery::from_params(as_strs(&input)) {
        Err(e) => {
            assert!(
                AuditQuery::PARAMS.contains(&e.field.as_str()),
                "error names no parameter: {e:?} for {input:?}"
            );
            assert!(!e.message.is_empty(), "empty message for {input:?}");
        }
        Ok(q) => {
            assert_eq!(q.validate(), Ok(()), "accepted but invalid: {q:?}");
            let from = last(&input, "from");
            assert_eq!(q.from, from.and_then(Millis::parse_iso), "from={from:?}");
            let to = last(&input, "to");
            assert_eq!(q.to, to.and_then(end_of), "to={to:?}");
            for v in [&q.actor, &q.action, &q.target].into_iter().flatten() {
                assert!(!v.is_empty() && v.trim() == v, "untrimmed text in {q:?}");
                assert!(v.chars().count() <= 128, "over-long text in {q:?}");
                assert!(!v.chars().any(char::is_control), "control char in {q:?}");
            }

            let qs = q.to_query_string();
            assert_eq!(
                qs.is_empty(),
                q == AuditQuery::default(),
                "{qs:?} for {q:?}"
            );
            let decoded = split_query(&qs);
            for (k, _) in &decoded {
                assert!(
                    AuditQuery::PARAMS.contains(&k.as_str()),
                    "unknown key {k:?}"
                );
            }
            let back = AuditQuery::from_params(as_strs(&decoded));
            assert_eq!(back.as_ref(), Ok(&q), "to_query_string {qs:?} of {q:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
