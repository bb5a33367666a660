//! The fleet map: every site on a server-rendered SVG world map, one glyph path per status
//! (shape, colour and a legend with counts), controllers with lines to the peer groups they
//! own. View and filters live in the URL (`region`, `x`, `y`, `z`, `status`, `peer_group`,
//! `controller`, `group`), so a view can be shared and works without JavaScript: zoom, pan,
//! presets and filters are links and a GET form. A click or tap on an area opens the list of
//! its sites (`cell`); `view=table` shows the same areas as a table for keyboard and
//! screen-reader users. Live updates redraw the marks in place.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::{get_filter_choices, get_fleet_map};
use crate::components::{group_digits, submit_enclosing_form, ErrorPanel};
use crate::live::{use_live, LastGood, Refresh, Shown, StaleNotice};
use crate::ApiError;
use engine::fleet::map::{MAP_HEIGHT, MAP_WIDTH};
use engine::fleet::{FleetMap, MapQuery, MapStatus, GRID_COLUMNS, MAX_ZOOM, REGIONS};
use engine::ValidationError;

type ParsedQuery = Result<MapQuery, ValidationError>;

/// The page's URL for `q` (and the table view when `table`).
pub fn map_href(q: &MapQuery, table: bool) -> String {
    let mut params = map_params(q);
    if table {
        params.push_str("&view=table");
    }
    format!("/map?{params}")
}

/// `q` as URL query parameters (what the page's URL and its server function carry).
pub fn map_params(q: &MapQuery) -> String {
    let mut parts = vec![
        format!("x={:.0}", q.x),
        format!("y={:.0}", q.y),
        format!("z={}", q.zoom),
    ];
    let mut text = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={}", engine::url::encode_query_value(v)));
        }
    };
    text("peer_group", &q.peer_group);
    text("controller", &q.controller);
    text("group", &q.group);
    if let Some(s) = q.status {
        parts.push(format!("status={}", s.as_str()));
    }
    if let Some((c, r)) = q.cell {
        parts.push(format!("cell={c},{r}"));
    }
    parts.join("&")
}

fn status_class(s: MapStatus) -> String {
    format!("mark mark-{}", s.as_str())
}

/// "12 offline, 3 critical alarm": counts per status in words (labels and titles).
fn status_words(counts: &[(MapStatus, u64)]) -> String {
    counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.label().to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A status's map glyph on its own, for legends and lists (decorative: the text says it).
#[component]
fn StatusGlyph(status: MapStatus, size: u32) -> impl IntoView {
    let d = engine::fleet::map::glyph_legend_path(status.glyph(), 6.0, 6.0, 4.5);
    view! {
        <svg class="legend-glyph" viewBox="0 0 12 12" width=size height=size aria-hidden="true">
            <path class=status_class(status) d=d/>
        </svg>
    }
}

#[component]
pub fn MapPage() -> impl IntoView {
    let params = use_query_map();
    let query: Memo<ParsedQuery> = Memo::new(move |_| {
        params.with(|m| {
            let pairs = crate::components::query_pairs(m, &MapQuery::PARAMS);
            MapQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        })
    });
    let table = Memo::new(move |_| params.with(|m| m.get("view").as_deref() == Some("table")));
    let live = use_live();
    let refresh = Refresh::<ParsedQuery>::new();
    let map = Resource::new(
        move || (query.get(), live.generation.get()),
        move |(q, g)| {
            let background = refresh.is_background(&q, g);
            async move {
                match q {
                    Ok(q) => get_fleet_map(map_params(&q), background).await,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
        },
    );
    let choices = Resource::new(|| (), |_| get_filter_choices());
    let last = LastGood::<Option<MapQuery>, FleetMap>::new();
    #[cfg(feature = "ssr")]
    if query.get_untracked().is_err() {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(http::StatusCode::BAD_REQUEST);
        }
    }
    view! {
        <Title text="Fleet map"/>
        <h1>"Fleet map"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading the map…"</p> }>
            {move || Suspend::new(async move {
                let q = query.get_untracked();
                let groups = choices.await.ok();
                let table = table.get_untracked();
                match (last.settle(q.clone().ok(), map.await), q) {
                    (Shown::Fresh(m), Ok(_)) => view! { <MapBody m groups table stale=None/> }.into_any(),
                    (Shown::Stale(m, e), Ok(_)) => view! { <MapBody m groups table stale=Some(e)/> }.into_any(),
                    (Shown::Failed(e), _) => view! { <ErrorPanel error=e/> }.into_any(),
                    (_, Err(e)) => view! { <ErrorPanel error=e.into()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn MapBody(
    m: FleetMap,
    groups: Option<engine::fleet::FilterChoices>,
    table: bool,
    stale: Option<ApiError>,
) -> impl IntoView {
    let q = m.query.clone();
    let controllers: Vec<String> = m.controllers.iter().map(|c| c.name.clone()).collect();
    view! {
        {stale.map(|e| view! { <StaleNotice error=e/> })}
        <MapFilters q=q.clone() groups controllers table/>
        <MapNav q=q.clone() table/>
        <p class="map-summary" data-map-summary="">
            {format!(
                "{} of {} matching sites in view",
                group_digits(m.in_view),
                group_digits(m.matching)
            )}
            " · updated "
            <time datetime=m.at.to_iso() data-updated="">{m.at.to_iso()}</time>
        </p>
        <Legend m=m.clone()/>
        {if table {
            view! { <AreaTable m=m.clone()/> }.into_any()
        } else {
            view! { <MapSvg m=m.clone()/> }.into_any()
        }}
        {m.selected.clone().map(|sites| view! { <CellSites m=m.clone() sites/> })}
    }
}

/// Filters as a GET form; the view (centre and zoom) rides along in hidden fields.
#[component]
fn MapFilters(
    q: MapQuery,
    groups: Option<engine::fleet::FilterChoices>,
    controllers: Vec<String>,
    table: bool,
) -> impl IntoView {
    let (groups, peer_groups) = groups
        .map(|g| (g.groups, g.peer_groups))
        .unwrap_or_default();
    let select = |name: &'static str,
                  label: &'static str,
                  options: Vec<(String, String)>,
                  current: Option<String>| {
        let id = format!("map-filter-{name}");
        let label_for = id.clone();
        view! {
            <label class="filter" for=label_for>
                <span>{label}</span>
                <select id=id name=name on:change=submit_enclosing_form>
                    <option value="" selected=current.is_none()>"Any"</option>
                    {options
                        .into_iter()
                        .map(|(value, text)| {
                            let selected = current.as_deref() == Some(value.as_str());
                            view! { <option value=value selected=selected>{text}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    let statuses = MapStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), s.label().to_string()))
        .collect();
    let pair = |v: Vec<String>| v.into_iter().map(|x| (x.clone(), x)).collect::<Vec<_>>();
    view! {
        <Form method="GET" action="/map" attr:class="filters map-filters">
            <input type="hidden" name="x" value=format!("{:.0}", q.x)/>
            <input type="hidden" name="y" value=format!("{:.0}", q.y)/>
            <input type="hidden" name="z" value=q.zoom.to_string()/>
            {table.then(|| view! { <input type="hidden" name="view" value="table"/> })}
            {select("status", "Status", statuses, q.status.map(|s| s.as_str().to_string()))}
            {select("peer_group", "Peer group", pair(peer_groups), q.peer_group.clone())}
            {select("controller", "Controller", pair(controllers), q.controller.clone())}
            {select("group", "Group", pair(groups), q.group.clone())}
            <button type="submit" class="button-secondary">"Apply"</button>
            <a class="button-link" href="/map">"Reset"</a>
        </Form>
    }
}

/// Zoom, pan, region presets and the map/table switch: plain links.
#[component]
fn MapNav(q: MapQuery, table: bool) -> impl IntoView {
    let (_, _, w, h) = q.view_box();
    let at = |x: f64, y: f64, zoom: u32| {
        map_href(
            &MapQuery {
                x: x.clamp(0.0, MAP_WIDTH),
                y: y.clamp(0.0, MAP_HEIGHT),
                zoom,
                cell: None,
                ..q.clone()
            },
            table,
        )
    };
    let zoom_in = (q.zoom < MAX_ZOOM).then(|| at(q.x, q.y, q.zoom * 2));
    let zoom_out = (q.zoom > 1).then(|| at(q.x, q.y, q.zoom / 2));
    let pans = [
        ("West", "←", q.x - w / 3.0, q.y),
        ("North", "↑", q.x, q.y - h / 3.0),
        ("South", "↓", q.x, q.y + h / 3.0),
        ("East", "→", q.x + w / 3.0, q.y),
    ];
    let regions = REGIONS
        .iter()
        .map(|(key, label, lon, lat, zoom)| {
            let (x, y) = engine::fleet::map::project(*lon, *lat);
            let href = at(x, y, *zoom);
            view! { <li><a href=href data-region=*key>{*label}</a></li> }
        })
        .collect_view();
    let switch = map_href(&q, !table);
    view! {
        <nav class="map-nav" aria-label="Map view">
            <ul class="map-zoom">
                <li>{match zoom_in {
                    Some(h) => view! { <a href=h class="button-link" aria-label="Zoom in" data-zoom="in">"+"</a> }.into_any(),
                    None => view! { <span class="button-link disabled" aria-disabled="true">"+"</span> }.into_any(),
                }}</li>
                <li>{match zoom_out {
                    Some(h) => view! { <a href=h class="button-link" aria-label="Zoom out" data-zoom="out">"−"</a> }.into_any(),
                    None => view! { <span class="button-link disabled" aria-disabled="true">"−"</span> }.into_any(),
                }}</li>
                {pans.into_iter().map(|(name, arrow, x, y)| {
                    let href = at(x, y, q.zoom);
                    view! { <li><a href=href class="button-link" aria-label=format!("Pan {name}") data-pan=name>{arrow}</a></li> }
                }).collect_view()}
            </ul>
            <ul class="map-regions">{regions}</ul>
            <a class="map-switch" href=switch data-view-switch="">
                {if table { "Show the map" } else { "Show as a table" }}
            </a>
        </nav>
    }
}

/// Counts per status, each a link that filters to it; the glyphs match the map's.
/// Counts by status; each a filter link, except `embedded` (a portal's iframe).
#[component]
pub(crate) fn Legend(m: FleetMap, #[prop(optional)] embedded: bool) -> impl IntoView {
    let items = m
        .totals
        .iter()
        .map(|(s, n)| {
            let href = map_href(
                &MapQuery {
                    status: Some(*s),
                    cell: None,
                    ..m.query.clone()
                },
                false,
            );
            let inner = view! {
                <StatusGlyph status=*s size=14/>
                <span class="legend-label">{s.label()}</span>
                <span class="count" data-count="">{group_digits(*n)}</span>
            };
            if embedded {
                view! { <li data-status=s.as_str()><span>{inner}</span></li> }.into_any()
            } else {
                view! { <li data-status=s.as_str()><a href=href>{inner}</a></li> }.into_any()
            }
        })
        .collect_view();
    view! { <ul class="map-legend" aria-label="Sites by status">{items}</ul> }
}

/// The map itself. `embedded` (a portal's iframe): the areas are not links into the dashboard.
#[component]
pub(crate) fn MapSvg(m: FleetMap, #[prop(optional)] embedded: bool) -> impl IntoView {
    let (vx, vy, vw, vh) = m.view_box;
    let view_box = format!("{vx:.1} {vy:.1} {vw:.1} {vh:.1}");
    let z = f64::from(m.query.zoom.max(1));
    let cell = vw / f64::from(GRID_COLUMNS);
    let label = format!("Map of {} sites; {}", m.in_view, status_words(&m.totals));
    let links = m
        .controllers
        .iter()
        .flat_map(|c| {
            c.groups.iter().map(move |(g, gx, gy, n)| {
                view! {
                    <line class="owner-link" x1=format!("{:.1}", c.x) y1=format!("{:.1}", c.y)
                        x2=format!("{gx:.1}") y2=format!("{gy:.1}")>
                        <title>{format!("{} owns {g} ({n} sites)", c.name)}</title>
                    </line>
                }
            })
        })
        .collect_view();
    let layers = m
        .layers
        .iter()
        .map(|l| view! { <path class=status_class(l.status) d=l.path.clone() data-layer=l.status.as_str() data-count=l.count.to_string()/> })
        .collect_view();
    let size = 5.0 / z;
    let controllers = m
        .controllers
        .iter()
        .map(|c| {
            view! {
                <g class="controller" data-controller=c.name.clone() data-availability=c.availability.clone()>
                    <rect x=format!("{:.2}", c.x - size / 2.0) y=format!("{:.2}", c.y - size / 2.0)
                        width=format!("{size:.2}") height=format!("{size:.2}")/>
                    <text x=format!("{:.2}", c.x + size) y=format!("{:.2}", c.y + size / 3.0)
                        font-size=format!("{:.2}", 9.0 / z)>{c.name.clone()}</text>
                </g>
            }
        })
        .collect_view();
    let cells = m
        .cells
        .iter()
        .filter(|_| !embedded)
        .map(|c| {
            let href = map_href(
                &MapQuery {
                    cell: Some((c.col, c.row)),
                    ..m.query.clone()
                },
                false,
            );
            let title = format!(
                "{} site(s) near {}: {}",
                c.sites,
                c.place,
                status_words(&c.by_status)
            );
            let selected = m.query.cell == Some((c.col, c.row));
            let aria = title.clone();
            view! {
                <a href=href aria-label=aria data-cell=format!("{},{}", c.col, c.row)>
                    <rect class=if selected { "map-cell selected" } else { "map-cell" }
                        x=format!("{:.2}", vx + f64::from(c.col) * cell)
                        y=format!("{:.2}", vy + f64::from(c.row) * cell)
                        width=format!("{cell:.2}") height=format!("{cell:.2}")>
                        <title>{title}</title>
                    </rect>
                </a>
            }
        })
        .collect_view();
    view! {
        <figure class="fleet-map">
            // With area links, a labelled group rather than an image, whose content would be
            // presentational and the links out of reach. The drawing itself is told by the
            // label and the legend, so its layers are hidden from assistive technology.
            <svg viewBox=view_box role=if embedded { "img" } else { "group" } aria-label=label preserveAspectRatio="xMidYMid meet" data-zoom=m.query.zoom.to_string()>
                <image href="/map/world.svg" x="0" y="0" width=format!("{MAP_WIDTH}") height=format!("{MAP_HEIGHT:.2}") aria-hidden="true"/>
                <g class="owner-links" aria-hidden="true">{links}</g>
                <g class="marks" aria-hidden="true">{layers}</g>
                <g class="controllers" aria-hidden="true">{controllers}</g>
                <g class="cells">{cells}</g>
            </svg>
            <figcaption class="muted">
                {(!embedded).then_some("Select an area to list its sites. ")}
                "Country outlines: Natural Earth via world-atlas."
            </figcaption>
        </figure>
    }
}

/// The same areas as the map, as a table.
#[component]
fn AreaTable(m: FleetMap) -> impl IntoView {
    let rows = m
        .cells
        .iter()
        .map(|c| {
            let href = map_href(
                &MapQuery {
                    cell: Some((c.col, c.row)),
                    ..m.query.clone()
                },
                true,
            );
            let count = |s: MapStatus| {
                c.by_status
                    .iter()
                    .find(|(x, _)| *x == s)
                    .map(|(_, n)| group_digits(*n))
                    .unwrap_or_else(|| "0".into())
            };
            view! {
                <tr data-cell=format!("{},{}", c.col, c.row) data-worst=c.worst.as_str()>
                    <th scope="row"><a href=href>{c.place.clone()}</a></th>
                    <td class="num">{group_digits(c.sites)}</td>
                    {MapStatus::ALL.iter().map(|s| view! { <td class="num">{count(*s)}</td> }).collect_view()}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="area-table" data-area-table="">
                <caption>{format!("Areas in view ({}), worst first", m.cells.len())}</caption>
                <thead>
                    <tr>
                        <th scope="col">"Area"</th>
                        <th scope="col" class="num">"Sites"</th>
                        {MapStatus::ALL.iter().map(|s| view! { <th scope="col" class="num">{s.label()}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// The sites of the selected area, worst first, with links to their pages.
#[component]
fn CellSites(m: FleetMap, sites: Vec<engine::fleet::MapSite>) -> impl IntoView {
    let close = map_href(
        &MapQuery {
            cell: None,
            ..m.query.clone()
        },
        false,
    );
    let place = m
        .query
        .cell
        .and_then(|(c, r)| m.cells.iter().find(|x| x.col == c && x.row == r))
        .map(|c| c.place.clone())
        .unwrap_or_else(|| "this area".into());
    let rows = sites
        .iter()
        .map(|s| {
            view! {
                <tr data-site=s.name.clone() data-status=s.status.as_str()>
                    <th scope="row"><a href=format!("/subclouds/{}", s.name)>{s.name.clone()}</a></th>
                    <td>
                        <StatusGlyph status=s.status size=12/>
                        " " {s.status.label()}
                    </td>
                    <td>{format!("{}, {}", s.city, s.country)}</td>
                    <td>{s.peer_group.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>{s.controller.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel cell-sites" aria-labelledby="cell-sites-heading" data-cell-sites="">
            <h2 id="cell-sites-heading">{format!("Sites near {place} ({})", sites.len())}</h2>
            <p><a href=close>"Close the list"</a></p>
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Subcloud"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Place"</th>
                            <th scope="col">"Peer group"</th>
                            <th scope="col">"Managed by"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}
