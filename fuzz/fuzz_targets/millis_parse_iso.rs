//! `time::Millis::parse_iso` (the audit log's `from`/`to`, from HTML date and datetime-local
//! inputs) and its inverse `Millis::to_iso`.
//!
//! What round-trips: `parse_iso` only yields whole seconds, so `parse_iso(to_iso(m)) == m` for
//! every parsed `m`; the text round-trips only for the canonical spellings (`0042-01-31`, not
//! `42-1-31` or `+0042-01-31`), which must come back as the same instant written out in full
//! (`to_iso` always writes seconds and a `Z`). Going the other way, `to_iso` of any instant in
//! years 1–9999 parses back to that instant truncated to the second.
#![no_main]

use engine::time::Millis;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in milliseconds.
const FIRST_MS: i64 = -62_135_596_800_000;
const END_MS: i64 = 253_402_300_800_000;

/// A date-time text: canonical or not, in range or just out of it.
fn structured(u: &mut Unstructured<'_>) -> Result<String> {
    let y = u.int_in_range(0u32..=10_000)?;
    let m = u.int_in_range(0u32..=13)?;
    let d = u.int_in_range(0u32..=32)?;
    let h = u.int_in_range(0u32..=24)?;
    let mi = u.int_in_range(0u32..=60)?;
    let s = u.int_in_range(0u32..=60)?;
    let date = match u.int_in_range(0u8..=7)? {
        0 => format!("{y}-{m}-{d}"),
        1 => format!("+{y:04}-{m:02}-{d:02}"),
        2 => format!("{y:05}-{m:03}-{d:02}"),
        _ => format!("{y:04}-{m:02}-{d:02}"),
    };
    let mut out = match u.int_in_range(0u8..=3)? {
        0 => date,
        1 => format!("{date}T{h:02}:{mi:02}"),
        2 => format!("{date}T{h}:{mi}:{s}"),
        _ => format!("{date}T{h:02}:{mi:02}:{s:02}"),
    };
    match u.int_in_range(0u8..=5)? {
        0 | 1 => out.push('Z'),
        2 => out.push_str(".000Z"),
        3 => out.push(' '),
        _ => {}
    }
    Ok(out)
}

/// `s` with every `9` of `pattern` a digit and every other byte equal.
fn shaped(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| {
            if p == b'9' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
}

fn num(s: &str, range: std::ops::Range<usize>) -> u32 {
    s[range].parse().expect("digits")
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// For a canonical spelling: the full `to_iso` text it names, and whether its fields are in
/// range. `None` for any other spelling.
fn canonical(s: &str) -> Option<(String, bool)> {
    let body = s.strip_suffix('Z').unwrap_or(s);
    let full = if shaped(body, "9999-99-99T99:99:99") {
        format!("{body}Z")
    } else if shaped(body, "9999-99-99T99:99") {
        format!("{body}:00Z")
    } else if shaped(body, "9999-99-99") {
        format!("{body}T00:00:00Z")
    } else {
        return None;
    };
    let (y, m, d) = (num(&full, 0..4), num(&full, 5..7), num(&full, 8..10));
    let (h, mi, sec) = (num(&full, 11..13), num(&full, 14..16), num(&full, 17..19));
    let valid = (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && (1..=days_in_month(y, m)).contains(&d)
        && h < 24
        && mi < 60
        && sec < 60;
    Some((full, valid))
}

fn check_text(s: &str) {
    let parsed = Millis::parse_iso(s);
    if let Some((full, valid)) = canonical(s) {
        assert_eq!(parsed.is_some(), valid, "{s:?} -> {parsed:?}");
        if let Some(m) = parsed {
            assert_eq!(m.to_iso(), full, "{s:?} -> {m:?}");
        }
    }
    if let Some(m) = parsed {
        assert_eq!(m.0.rem_euclid(1000), 0, "{s:?} -> {m:?}: not whole seconds");
        assert!(
            (FIRST_MS..END_MS).contains(&m.0),
            "{s:?} -> {m:?}: out of years 1-9999"
        );
        let iso = m.to_iso();
        assert!(shaped(&iso, "9999-99-99T99:99:99Z"), "{m:?} -> {iso:?}");
        assert_eq!(
            Millis::parse_iso(&iso),
            Some(m),
            "{s:?} -> {m:?} -> {iso:?}"
        );
    }
    if !s.ends_with('Z') {
        let z = format!("{s}Z");
        assert_eq!(Millis::parse_iso(&z), parsed, "{s:?} and {z:?} differ");
    }
}

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0u8..=2)? {
        0 => check_text(engine_fuzz::rest_text(u)),
        1 => check_text(&structured(u)?),
        _ => {
            let m: i64 = if u.arbitrary()? {
                u.arbitrary()?
            } else {
                u.int_in_range(FIRST_MS - 86_400_000..=END_MS + 86_400_000)?
            };
            let iso = Millis(m).to_iso();
            if (FIRST_MS..END_MS).contains(&m) {
                let whole = Millis(m - m.rem_euclid(1000));
                assert_eq!(Millis::parse_iso(&iso), Some(whole), "{m} -> {iso:?}");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
