//! The availability bar of the detail page: one segment per span of the last 24 h, its width
//! proportional to the span's duration, with hour ticks. Drawn as SVG with percentage
//! geometry: it is complete in the server's HTML (no script, no inline style, which the
//! Content-Security-Policy forbids) and scales with the page.

use leptos::prelude::*;

use engine::fleet::AvailabilityStatus;
use engine::health::AvailabilityTimeline;
use engine::time::Millis;

/// Widths are in basis points: 10 000 is the whole bar.
pub const FULL: u32 = 10_000;
const HOUR_MS: i64 = 3_600_000;

/// One drawn span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// `online`, `offline` or `unknown`.
    pub state: &'static str,
    pub from: Millis,
    pub to: Millis,
    /// Offset and width in basis points of the bar.
    pub left: u32,
    pub width: u32,
}

/// Segments of a known state narrower than this (0.3 % of a day is about 4 min) also get a
/// mark a few pixels wide on top, so that a short outage is visible at any screen width; the
/// segments themselves stay exactly proportional.
pub const MARK_BELOW: u32 = 30;

/// The segments that need a mark, offline last (drawn on top).
pub fn marks(segs: &[Segment]) -> Vec<&Segment> {
    let mut out: Vec<&Segment> = segs
        .iter()
        .filter(|s| s.width < MARK_BELOW && s.state != "unknown")
        .collect();
    out.sort_by_key(|s| s.state == "offline");
    out
}

/// One hour mark; `label` every few hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub at: Millis,
    /// The UTC hour of day.
    pub hour: i64,
    pub left: u32,
    pub label: Option<String>,
}

pub fn state_name(a: Option<AvailabilityStatus>) -> &'static str {
    match a {
        Some(AvailabilityStatus::Online) => "online",
        Some(AvailabilityStatus::Offline) => "offline",
        None => "unknown",
    }
}

/// Position of `at` on the bar, in basis points, clamped to the bar.
fn position(t: &AvailabilityTimeline, at: Millis) -> u32 {
    let total = i128::from(t.to.0) - i128::from(t.from.0);
    if total <= 0 {
        return 0;
    }
    let off = (i128::from(at.0) - i128::from(t.from.0)).clamp(0, total);
    // Rounded to the nearest basis point.
    u32::try_from((off * i128::from(FULL) + total / 2) / total).unwrap_or(FULL)
}

/// The segments of a timeline. Each starts where the previous ended (the first at 0, the last
/// ends at [`FULL`]), so the widths always add up to exactly the whole bar.
pub fn segments(t: &AvailabilityTimeline) -> Vec<Segment> {
    if t.to <= t.from || t.spans.is_empty() {
        return Vec::new();
    }
    let n = t.spans.len();
    let mut out = Vec::with_capacity(n);
    let mut left = 0;
    for (i, s) in t.spans.iter().enumerate() {
        let right = if i + 1 == n {
            FULL
        } else {
            position(t, s.to).max(left)
        };
        out.push(Segment {
            state: state_name(s.availability),
            from: s.from,
            to: s.to,
            left,
            width: right - left,
        });
        left = right;
    }
    out
}

/// A mark at every whole UTC hour inside the window, labelled every `label_every` hours.
pub fn hour_ticks(t: &AvailabilityTimeline, label_every: i64) -> Vec<Tick> {
    let mut out = Vec::new();
    if t.to <= t.from {
        return out;
    }
    let mut h = (t.from.0.div_euclid(HOUR_MS) + 1) * HOUR_MS;
    while h < t.to.0 {
        let hour = h.div_euclid(HOUR_MS).rem_euclid(24);
        out.push(Tick {
            at: Millis(h),
            hour,
            left: position(t, Millis(h)),
            label: (hour % label_every.max(1) == 0).then(|| format!("{hour:02}:00")),
        });
        h += HOUR_MS;
    }
    out
}

/// `12.34%` for an SVG attribute.
pub fn percent(bp: u32) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// A short duration: `3 h 05 min`, `12 min`, `40 s`.
pub fn duration_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m) = (s / 3600, (s % 3600) / 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

/// `99.5% online` from per mille.
pub fn online_text(permille: Option<u32>) -> String {
    match permille {
        Some(p) => format!("{}.{}% online", p / 10, p % 10),
        None => "no availability data".to_string(),
    }
}

/// The detail page's availability section.
#[component]
pub fn AvailabilitySection(timeline: AvailabilityTimeline) -> impl IntoView {
    let segs = segments(&timeline);
    let title_of = |s: &Segment| {
        format!(
            "{}: {} – {} ({})",
            s.state,
            s.from.to_iso(),
            s.to.to_iso(),
            duration_text(s.to.0 - s.from.0)
        )
    };
    let short = marks(&segs)
        .into_iter()
        .map(|s| {
            view! {
                <rect
                    class=format!("seg-mark seg-{}", s.state)
                    x=percent(s.left)
                    width="3"
                    y="0"
                    height="26"
                >
                    <title>{title_of(s)}</title>
                </rect>
            }
        })
        .collect_view();
    let ticks = hour_ticks(&timeline, 3);
    let online = online_text(timeline.online_permille());
    let transitions = match timeline.transitions {
        1 => "1 transition".to_string(),
        n => format!("{n} transitions"),
    };
    let range = format!(
        "{} – {} (UTC)",
        timeline.from.to_iso(),
        timeline.to.to_iso()
    );
    let described = format!("Availability from {range}: {online}, {transitions}.");
    view! {
        <section class="panel availability" aria-labelledby="availability-heading">
            <h2 id="availability-heading">"Availability, last 24 h"</h2>
            <p class="timeline-summary">
                <strong data-online=timeline.online_permille().map(|p| p.to_string())>{online}</strong>
                " · "
                <span data-transitions=timeline.transitions>{transitions}</span>
            </p>
            <svg
                class="timeline"
                width="100%"
                height="46"
                role="img"
                aria-label=described
                data-spans=segs.len()
            >
                {segs
                    .iter()
                    .map(|s| {
                        let title = title_of(s);
                        view! {
                            <rect
                                class=format!("seg seg-{}", s.state)
                                data-state=s.state
                                data-width=s.width
                                x=percent(s.left)
                                width=percent(s.width)
                                y="0"
                                height="26"
                            >
                                <title>{title}</title>
                            </rect>
                        }
                    })
                    .collect_view()}
                {short}
                {ticks
                    .iter()
                    .map(|t| {
                        let x = percent(t.left);
                        let major = t.label.is_some();
                        view! {
                            <line
                                class=if major { "tick tick-major" } else { "tick" }
                                x1=x.clone()
                                x2=x.clone()
                                y1="26"
                                y2=if major { "33" } else { "30" }
                            />
                            // Narrow screens keep every other label (see the stylesheet).
                            {t.label.clone().map(|l| {
                                let class = if t.hour % 6 == 0 { "tick-label" } else { "tick-label tick-label-minor" };
                                view! {
                                    <text class=class x=x.clone() y="44" text-anchor="middle">{l}</text>
                                }
                            })}
                        }
                    })
                    .collect_view()}
            </svg>
            <p class="timeline-range">
                <time datetime=timeline.from.to_iso()>{timeline.from.to_iso()}</time>
                " – "
                <time datetime=timeline.to.to_iso()>{timeline.to.to_iso()}</time>
                " (UTC)"
            </p>
            <ul class="timeline-legend" aria-label="Legend">
                <li><span class="swatch seg-online" aria-hidden="true"></span>"online"</li>
                <li><span class="swatch seg-offline" aria-hidden="true"></span>"offline"</li>
                <li><span class="swatch seg-unknown" aria-hidden="true"></span>"unknown"</li>
            </ul>
            // The spans as text, for screen readers and for copying.
            <ol class="visually-hidden">
                {segs
                    .iter()
                    .map(|s| view! { <li>{format!("{}: {} – {}", s.state, s.from.to_iso(), s.to.to_iso())}</li> })
                    .collect_view()}
            </ol>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::health::AvailabilitySpan;
    use AvailabilityStatus::*;

    fn timeline(
        from: i64,
        to: i64,
        cuts: &[(i64, Option<AvailabilityStatus>)],
    ) -> AvailabilityTimeline {
        // cuts: start of each span and its state; spans run to the next cut / `to`.
        let spans = cuts
            .iter()
            .enumerate()
            .map(|(i, &(at, a))| AvailabilitySpan {
                from: Millis(at),
                to: Millis(cuts.get(i + 1).map_or(to, |c| c.0)),
                availability: a,
            })
            .collect();
        AvailabilityTimeline {
            from: Millis(from),
            to: Millis(to),
            spans,
            transitions: cuts.len().saturating_sub(1) as u32,
        }
    }

    #[test]
    fn segment_widths_add_up_to_the_whole_bar() {
        let day = 24 * HOUR_MS;
        let cases = [
            timeline(0, day, &[(0, Some(Online))]),
            timeline(
                0,
                day,
                &[
                    (0, None),
                    (7_000_001, Some(Online)),
                    (7_000_500, Some(Offline)),
                    (50_000_000, Some(Online)),
                ],
            ),
            // Thirds do not divide evenly into basis points.
            timeline(
                0,
                3,
                &[(0, Some(Online)), (1, Some(Offline)), (2, Some(Online))],
            ),
            timeline(
                1_700_000_123_456,
                1_700_000_123_456 + day,
                &[
                    (1_700_000_123_456, Some(Offline)),
                    (1_700_000_123_457, Some(Online)),
                    (1_700_000_123_456 + day - 1, Some(Offline)),
                ],
            ),
        ];
        for t in &cases {
            let segs = segments(t);
            assert_eq!(segs.len(), t.spans.len());
            assert_eq!(segs.iter().map(|s| s.width).sum::<u32>(), FULL, "{t:?}");
            assert_eq!(segs[0].left, 0);
            for w in segs.windows(2) {
                assert_eq!(w[0].left + w[0].width, w[1].left, "contiguous");
            }
        }
        // Proportional: 6 h of 24 is a quarter.
        let t = timeline(0, day, &[(0, Some(Online)), (6 * HOUR_MS, Some(Offline))]);
        let segs = segments(&t);
        assert_eq!((segs[0].width, segs[1].width), (2_500, 7_500));
        assert_eq!((segs[0].state, segs[1].state), ("online", "offline"));
        assert_eq!(percent(segs[0].width), "25.00%");
        assert_eq!(percent(segs[1].left), "25.00%");
        assert_eq!(percent(7), "0.07%");
    }

    #[test]
    fn short_known_spans_get_a_mark_offline_on_top() {
        let day = 24 * HOUR_MS;
        let t = timeline(
            0,
            day,
            &[
                (0, None),
                (day - 300_000, Some(Offline)),
                (day - 240_000, Some(Online)),
                (day - 200_000, Some(Offline)),
                (day - 100_000, Some(Online)),
            ],
        );
        let segs = segments(&t);
        let m = marks(&segs);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m.iter().map(|s| s.state).collect::<Vec<_>>(),
            ["online", "online", "offline", "offline"]
        );
        // A long span needs none.
        let long = timeline(0, day, &[(0, Some(Online)), (HOUR_MS, Some(Offline))]);
        assert!(marks(&segments(&long)).is_empty());
    }

    #[test]
    fn an_empty_or_inverted_window_draws_nothing() {
        assert!(segments(&timeline(5, 5, &[(5, None)])).is_empty());
        assert!(segments(&AvailabilityTimeline {
            from: Millis(0),
            to: Millis(10),
            spans: vec![],
            transitions: 0
        })
        .is_empty());
        assert!(hour_ticks(&timeline(10, 5, &[]), 3).is_empty());
    }

    #[test]
    fn ticks_fall_on_whole_hours_with_labels_every_third() {
        // 22:30 on day 0 to 22:30 the next day.
        let from = 22 * HOUR_MS + HOUR_MS / 2;
        let t = timeline(from, from + 24 * HOUR_MS, &[(from, Some(Online))]);
        let ticks = hour_ticks(&t, 3);
        assert_eq!(ticks.len(), 24);
        assert_eq!(ticks[0].at, Millis(23 * HOUR_MS));
        assert_eq!(ticks[0].label, None);
        assert_eq!(ticks[1].label.as_deref(), Some("00:00"));
        assert_eq!(ticks[4].label.as_deref(), Some("03:00"));
        // Half an hour of 24 is 208 basis points (rounded).
        assert_eq!(ticks[0].left, 208);
        assert!(ticks.windows(2).all(|w| w[0].left < w[1].left));
        assert!(ticks.iter().all(|k| k.left < FULL));
    }

    #[test]
    fn texts() {
        assert_eq!(duration_text(40_000), "40 s");
        assert_eq!(duration_text(12 * 60_000), "12 min");
        assert_eq!(duration_text(3 * HOUR_MS + 5 * 60_000), "3 h 05 min");
        assert_eq!(duration_text(24 * HOUR_MS), "24 h");
        assert_eq!(online_text(Some(995)), "99.5% online");
        assert_eq!(online_text(Some(1000)), "100.0% online");
        assert_eq!(online_text(None), "no availability data");
    }
}
