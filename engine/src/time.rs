//! Timestamps are UTC milliseconds since the Unix epoch everywhere (store, wire, events): one
//! integer type that both SQL backends and the browser handle identically.

use serde::{Deserialize, Serialize};

/// A UTC instant in milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// Now, from the system clock. Not available in the browser build.
    #[cfg(feature = "store")]
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// ISO 8601 in UTC to the second, e.g. `2026-11-28T07:26:14Z`. Locale-free, so the server
    /// and the browser render the same text (no hydration mismatch).
    pub fn to_iso(self) -> String {
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

impl Millis {
    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, optionally ending in
    /// `Z`, as UTC (what HTML date and datetime-local inputs send).
    pub fn parse_iso(s: &str) -> Option<Self> {
        let s = s.strip_suffix('Z').unwrap_or(s);
        let (date, time) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut d = date.splitn(3, '-');
        let y: i64 = d.next()?.parse().ok()?;
        let m: u32 = d.next()?.parse().ok()?;
        let day: u32 = d.next()?.parse().ok()?;
        if !(1..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || day == 0
            || day > days_in_month(y, m)
        {
            return None;
        }
        let mut secs = days_from_civil(y, m, day) * 86_400;
        if let Some(t) = time {
            let mut parts = t.split(':');
            let h: i64 = parts.next()?.parse().ok()?;
            let min: i64 = parts.next()?.parse().ok()?;
            let sec: i64 = match parts.next() {
                Some(x) => x.parse().ok()?,
                None => 0,
            };
            if parts.next().is_some()
                || !(0..24).contains(&h)
                || !(0..60).contains(&min)
                || !(0..60).contains(&sec)
            {
                return None;
            }
            secs += h * 3600 + min * 60 + sec;
        }
        Some(Millis(secs * 1000))
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A proleptic Gregorian date to days since the epoch (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since the epoch to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Millis(0).to_iso(), "1970-01-01T00:00:00Z");
        assert_eq!(Millis(951_782_400_000).to_iso(), "2000-02-29T00:00:00Z");
        assert_eq!(Millis(1_795_850_774_999).to_iso(), "2026-11-28T07:26:14Z");
        assert_eq!(Millis(-1000).to_iso(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_what_it_prints_and_html_inputs() {
        for m in [0, 951_782_400_000, 1_795_850_774_000, 253_402_300_799_000] {
            assert_eq!(Millis::parse_iso(&Millis(m).to_iso()), Some(Millis(m)));
        }
        assert_eq!(
            Millis::parse_iso("2026-11-28"),
            Some(Millis(1_795_824_000_000))
        );
        assert_eq!(
            Millis::parse_iso("2026-11-28T07:26"),
            Some(Millis(1_795_850_760_000))
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-02-29",
            "2026-11-28T24:00",
            "x",
            "2026-11-28T07:26:14:01",
            "-5-01-01",
        ] {
            assert_eq!(Millis::parse_iso(bad), None, "{bad:?}");
        }
        assert!(Millis::parse_iso("2024-02-29").is_some());
    }
}
