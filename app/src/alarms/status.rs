//! The status page: "is anything wrong, where, since when" at a glance, made for a phone
//! (390×844) first. A verdict, the counts that matter as links, and the problems worst and
//! oldest first, each with where it is and how long it has lasted. Live updates refresh it.

use leptos::prelude::*;
use leptos_meta::Title;

use super::get_status_digest;
use crate::components::{group_digits, Badge, ErrorPanel, Tone};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::health::{duration_text, AlarmSeverity, StatusDigest};

fn tone(s: AlarmSeverity) -> Tone {
    match s {
        AlarmSeverity::Critical => Tone::Critical,
        AlarmSeverity::Major => Tone::Major,
        AlarmSeverity::Minor | AlarmSeverity::Warning => Tone::Warning,
    }
}

/// One count among the status tiles. A non-zero count is marked critical (`Tone::Critical`)
/// or major (`Major`, `Warning`); other tones never mark it. With `href` the tile links to the
/// list behind the count (never in an embed, whose viewers cannot open the dashboard).
pub(crate) fn status_tile(
    label: &'static str,
    n: u64,
    alert: Tone,
    href: Option<&'static str>,
) -> AnyView {
    let class = match (n, alert) {
        (0, _) => "status-tile",
        (_, Tone::Critical) => "status-tile status-tile-critical",
        (_, Tone::Major | Tone::Warning) => "status-tile status-tile-major",
        _ => "status-tile",
    };
    let inner = view! {
        <span class="status-tile-value">{group_digits(n)}</span>
        <span class="status-tile-label">{label}</span>
    };
    match href {
        Some(href) => {
            view! { <li><a class=class href=href data-tile=label>{inner}</a></li> }.into_any()
        }
        None => view! { <li><div class=class data-tile=label>{inner}</div></li> }.into_any(),
    }
}

#[component]
pub fn StatusPage() -> impl IntoView {
    let live = use_live();
    let refresh = Refresh::<()>::new();
    let digest = Resource::new(
        move || live.generation.get(),
        move |g| get_status_digest(refresh.is_background(&(), g)),
    );
    let last = LastGood::<(), StatusDigest>::new();
    view! {
        <Title text="Status"/>
        <h1>"Status"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading the status…"</p> }>
            {move || Suspend::new(async move {
                match last.settle((), digest.await) {
                    Shown::Fresh(d) => view! { <StatusBody d stale=None/> }.into_any(),
                    Shown::Stale(d, e) => view! { <StatusBody d stale=Some(e)/> }.into_any(),
                    Shown::Failed(e) => view! { <ErrorPanel error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The verdict, the counts and the problems. `embedded` (a portal's iframe): no links into the
/// dashboard, which the portal's viewers cannot open.
#[component]
pub(crate) fn StatusBody(
    d: StatusDigest,
    stale: Option<ApiError>,
    #[prop(optional)] embedded: bool,
) -> impl IntoView {
    let problems = d.problems.len();
    let (verdict, detail) = if d.all_clear {
        (
            "All clear".to_string(),
            format!(
                "{} sites: every managed site online and measuring its health, no critical or major alarm, every controller up.",
                group_digits(d.sites)
            ),
        )
    } else {
        let mut parts = Vec::new();
        let mut add = |n: u64, one: &str, many: &str| {
            if n > 0 {
                parts.push(format!(
                    "{} {}",
                    group_digits(n),
                    if n == 1 { one } else { many }
                ));
            }
        };
        add(d.offline, "site offline", "sites offline");
        add(
            d.health_unknown,
            "site with health unknown",
            "sites with health unknown",
        );
        add(d.critical_alarms, "critical alarm", "critical alarms");
        add(d.major_alarms, "major alarm", "major alarms");
        add(d.controller_alarms, "controller alarm", "controller alarms");
        add(
            d.stalled_strategies,
            "strategy stalled",
            "strategies stalled",
        );
        ("Attention needed".to_string(), parts.join(" · "))
    };
    let tile = |label, n, href, t| status_tile(label, n, t, (!embedded).then_some(href));
    let now = d.as_of;
    let items = d
        .problems
        .iter()
        .map(|p| {
            let since = p.since.to_iso();
            let lasted = duration_text(p.since, now);
            view! {
                <li class="problem" data-severity=p.severity.as_str()>
                    <Badge text=p.severity.to_string() tone=tone(p.severity)/>
                    <span class="problem-what">{p.what.clone()}</span>
                    {if embedded {
                        view! { <span class="problem-place">{p.place.clone()}</span> }.into_any()
                    } else {
                        view! { <a class="problem-place" href=p.href.clone()>{p.place.clone()}</a> }.into_any()
                    }}
                    <span class="problem-since">
                        "for " {lasted} " (since " <time datetime=since.clone()>{since.replace('T', " ").replace('Z', " UTC")}</time> ")"
                    </span>
                </li>
            }
        })
        .collect_view();
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <section class=if d.all_clear { "verdict verdict-clear" } else { "verdict verdict-attention" }
            data-all-clear=d.all_clear.to_string() aria-live="polite">
            <p class="verdict-headline">
                <span aria-hidden="true">{if d.all_clear { "✓ " } else { "▲ " }}</span>
                {verdict}
            </p>
            <p class="verdict-detail">{detail}</p>
        </section>
        <ul class="status-tiles" aria-label="Counts">
            {tile("Sites offline", d.offline, "/subclouds?availability=offline&management=managed", Tone::Critical)}
            {tile("Health unknown", d.health_unknown, "/subclouds?alarm=unknown&management=managed", Tone::Warning)}
            {tile("Critical alarms", d.critical_alarms, "/alarms?severity=critical", Tone::Critical)}
            {tile("Major alarms", d.major_alarms, "/alarms?severity=major", Tone::Major)}
            {tile("Controller alarms", d.controller_alarms, "/controllers", Tone::Critical)}
            {tile("Strategies stalled", d.stalled_strategies, "/orchestration", Tone::Major)}
        </ul>
        <section class="panel" aria-labelledby="problems-heading">
            <h2 id="problems-heading">{format!("Problems, worst and oldest first ({problems})")}</h2>
            {if problems == 0 {
                view! { <p class="muted">"Nothing to report."</p> }.into_any()
            } else {
                view! { <ol class="problems">{items}</ol> }.into_any()
            }}
        </section>
        <p class="muted as-of">"As of " <time datetime=now.to_iso() data-as-of="">{now.to_iso()}</time></p>
    }
}
