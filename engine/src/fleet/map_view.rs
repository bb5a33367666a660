//! The fleet map's read model: which sites are where, in what state, and who manages them,
//! for one viewport and one filter. Sites are drawn as one glyph path per status (tens of
//! kilobytes for thousands of sites), and the view is cut into a grid of cells that list
//! the sites they hold, so a click or tap on an area works without JavaScript.

use serde::{Deserialize, Serialize};

use super::map::{project, Glyph, MAP_HEIGHT, MAP_WIDTH};
use crate::error::ValidationError;
use crate::text_enum::text_enum;
use crate::time::Millis;

text_enum! {
    /// A site's worst condition, as the map shows it (worst first in [`MapStatus::ALL`]).
    pub enum MapStatus: "map status" {
        Offline = "offline",
        Critical = "critical",
        Major = "major",
        Minor = "minor",
        Unknown = "unknown",
        Ok = "ok",
        Unmanaged = "unmanaged",
    }
}

impl MapStatus {
    /// Shape as well as colour: a status reads in greyscale and for colour-blind eyes.
    pub fn glyph(self) -> Glyph {
        match self {
            MapStatus::Offline => Glyph::Cross,
            MapStatus::Critical => Glyph::Triangle,
            MapStatus::Major => Glyph::Diamond,
            // Unknown is drawn hollow (style), minor filled: they differ in greyscale too.
            MapStatus::Minor | MapStatus::Unknown => Glyph::Square,
            MapStatus::Ok | MapStatus::Unmanaged => Glyph::Circle,
        }
    }

    /// Words for legends and titles.
    pub fn label(self) -> &'static str {
        match self {
            MapStatus::Offline => "Offline",
            MapStatus::Critical => "Critical alarm",
            MapStatus::Major => "Major alarm",
            MapStatus::Minor => "Minor alarm or warning",
            MapStatus::Unknown => "Health unknown",
            MapStatus::Ok => "OK",
            MapStatus::Unmanaged => "Unmanaged",
        }
    }

    /// Higher is worse.
    pub fn rank(self) -> u8 {
        match self {
            MapStatus::Offline => 6,
            MapStatus::Critical => 5,
            MapStatus::Major => 4,
            MapStatus::Minor => 3,
            MapStatus::Unknown => 2,
            MapStatus::Ok => 1,
            MapStatus::Unmanaged => 0,
        }
    }

    /// The status of one site from its management, availability and active alarm counts;
    /// `observed`: whether its agent measures its platform (a site that does not is never OK).
    pub fn of(
        managed: bool,
        online: bool,
        critical: i64,
        major: i64,
        minor_or_warning: i64,
        observed: bool,
    ) -> Self {
        if !managed {
            MapStatus::Unmanaged
        } else if !online {
            MapStatus::Offline
        } else if critical > 0 {
            MapStatus::Critical
        } else if major > 0 {
            MapStatus::Major
        } else if minor_or_warning > 0 {
            MapStatus::Minor
        } else if !observed {
            MapStatus::Unknown
        } else {
            MapStatus::Ok
        }
    }
}

/// Named views an operator jumps to: (name, label, centre longitude, centre latitude, zoom).
pub const REGIONS: [(&str, &str, f64, f64, u32); 7] = [
    ("world", "World", 10.0, 10.0, 1),
    ("north-america", "North America", -98.0, 42.0, 3),
    ("south-america", "South America", -60.0, -20.0, 3),
    ("europe", "Europe", 12.0, 48.0, 4),
    ("africa", "Africa", 18.0, 3.0, 3),
    ("asia", "Asia", 100.0, 32.0, 3),
    ("oceania", "Oceania", 140.0, -25.0, 3),
];

/// Columns of the clickable grid over the view.
pub const GRID_COLUMNS: u32 = 24;
pub const MAX_ZOOM: u32 = 64;

/// What the map page asks for; every field comes from the URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapQuery {
    /// Centre of the view in map units (0..MAP_WIDTH, 0..MAP_HEIGHT).
    pub x: f64,
    pub y: f64,
    /// 1 shows the whole world; each doubling halves the width shown.
    pub zoom: u32,
    pub status: Option<MapStatus>,
    pub peer_group: Option<String>,
    pub controller: Option<String>,
    pub group: Option<String>,
    /// A grid cell of this view (column, row) whose sites are listed.
    pub cell: Option<(u32, u32)>,
}

impl Default for MapQuery {
    fn default() -> Self {
        let (_, _, lon, lat, zoom) = REGIONS[0];
        let (x, y) = project(lon, lat);
        Self {
            x,
            y,
            zoom,
            status: None,
            peer_group: None,
            controller: None,
            group: None,
            cell: None,
        }
    }
}

impl MapQuery {
    /// URL parameter names, in the order they are written back.
    pub const PARAMS: [&'static str; 9] = [
        "region",
        "x",
        "y",
        "z",
        "status",
        "peer_group",
        "controller",
        "group",
        "cell",
    ];

    /// Parses a whole query string (`x=…&z=…`, with or without `?`), as a page URL, an embed
    /// link's saved view or a server function's `view` argument carries it. A string that is not
    /// a query string at all is reported under `field`.
    pub fn from_query_string(field: &str, qs: &str) -> Result<Self, ValidationError> {
        let pairs = crate::url::parse_query(qs)
            .ok_or_else(|| ValidationError::new(field, "is not a valid query string"))?;
        Self::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Parses the URL's parameters: empty values mean "any", unknown ones are ignored, and the
    /// first bad value is reported by name. `region` sets the centre and zoom; `x`, `y` and
    /// `z` given with it override its parts.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationError> {
        let mut q = Self::default();
        let mut explicit: Vec<(&str, &str)> = Vec::new();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = |v: &str| -> Result<String, ValidationError> {
                if v.chars().count() > 128 || v.chars().any(char::is_control) {
                    Err(ValidationError::new(
                        key,
                        "must be a name of at most 128 characters",
                    ))
                } else {
                    Ok(v.to_string())
                }
            };
            match key {
                "region" => {
                    let (_, _, lon, lat, zoom) = REGIONS
                        .iter()
                        .find(|r| r.0 == value)
                        .copied()
                        .ok_or_else(|| {
                            ValidationError::new(
                                "region",
                                format!(
                                    "unknown region; one of {}",
                                    REGIONS.map(|r| r.0).join(", ")
                                ),
                            )
                        })?;
                    (q.x, q.y) = project(lon, lat);
                    q.zoom = zoom;
                }
                "x" | "y" | "z" | "cell" => explicit.push((key, value)),
                "status" => {
                    q.status = Some(
                        value
                            .parse()
                            .map_err(|e: ValidationError| e.in_field(key))?,
                    )
                }
                "peer_group" => q.peer_group = Some(text(value)?),
                "controller" => q.controller = Some(text(value)?),
                "group" => q.group = Some(text(value)?),
                _ => {}
            }
        }
        for (key, value) in explicit {
            match key {
                "x" | "y" => {
                    let limit = if key == "x" { MAP_WIDTH } else { MAP_HEIGHT };
                    let v: f64 = value
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite() && (0.0..=limit).contains(v))
                        .ok_or_else(|| {
                            ValidationError::new(
                                key,
                                format!("must be a number from 0 to {limit:.0}"),
                            )
                        })?;
                    if key == "x" {
                        q.x = v;
                    } else {
                        q.y = v;
                    }
                }
                "z" => {
                    q.zoom = value
                        .parse()
                        .ok()
                        .filter(|z: &u32| z.is_power_of_two() && *z <= MAX_ZOOM)
                        .ok_or_else(|| {
                            ValidationError::new(
                                "z",
                                format!("must be 1, 2, 4, … up to {MAX_ZOOM}"),
                            )
                        })?;
                }
                _ => {
                    let bad =
                        || ValidationError::new("cell", "must be column,row of the map's grid");
                    let (c, r) = value.split_once(',').ok_or_else(bad)?;
                    let (c, r): (u32, u32) = (
                        c.trim().parse().map_err(|_| bad())?,
                        r.trim().parse().map_err(|_| bad())?,
                    );
                    if c >= GRID_COLUMNS || r >= GRID_COLUMNS {
                        return Err(bad());
                    }
                    q.cell = Some((c, r));
                }
            }
        }
        Ok(q)
    }

    /// The view box (x, y, width, height) in map units, kept inside the world.
    pub fn view_box(&self) -> (f64, f64, f64, f64) {
        let z = f64::from(self.zoom.clamp(1, MAX_ZOOM));
        let (w, h) = (MAP_WIDTH / z, MAP_HEIGHT / z);
        let x = (self.x - w / 2.0).clamp(0.0, MAP_WIDTH - w);
        let y = (self.y - h / 2.0).clamp(0.0, MAP_HEIGHT - h);
        (x, y, w, h)
    }

    /// Side of one grid cell in map units.
    pub fn cell_size(&self) -> f64 {
        self.view_box().2 / f64::from(GRID_COLUMNS)
    }
}

/// One status layer: every site of that status in view as one path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapLayer {
    pub status: MapStatus,
    /// Sites of this status in the view.
    pub count: u64,
    pub path: String,
}

/// A controller on the map, with the peer groups it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapController {
    pub name: String,
    pub availability: String,
    pub x: f64,
    pub y: f64,
    /// Owned peer groups: (name, centre of its sites x, y, sites).
    pub groups: Vec<(String, f64, f64, u64)>,
}

/// One occupied cell of the view's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapCell {
    pub col: u32,
    pub row: u32,
    pub sites: u64,
    pub worst: MapStatus,
    /// Sites per status, worst first, only the non-zero ones.
    pub by_status: Vec<(MapStatus, u64)>,
    /// Where most of its sites are ("Amsterdam, NL").
    pub place: String,
}

/// One site listed for a selected cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapSite {
    pub name: String,
    pub status: MapStatus,
    pub city: String,
    pub country: String,
    pub peer_group: Option<String>,
    pub controller: String,
}

/// Everything the map page draws for one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetMap {
    pub query: MapQuery,
    pub view_box: (f64, f64, f64, f64),
    /// Glyph radius in map units at this zoom.
    pub radius: f64,
    /// Worst status last, so it is drawn on top.
    pub layers: Vec<MapLayer>,
    pub controllers: Vec<MapController>,
    pub cells: Vec<MapCell>,
    /// Sites of the selected cell, worst first.
    pub selected: Option<Vec<MapSite>>,
    /// Sites matching the filters anywhere, per status (worst first).
    pub totals: Vec<(MapStatus, u64)>,
    pub matching: u64,
    pub in_view: u64,
    pub at: Millis,
}

#[cfg(feature = "store")]
mod read {
    use std::collections::{BTreeMap, HashMap};

    use sqlx::Row;

    use super::*;
    use crate::error::Result;
    use crate::fleet::map::glyph_path;
    use crate::health::AlarmStatus;
    use crate::store::Sql;
    use crate::Engine;

    /// Most sites listed for one cell.
    const MAX_LISTED: usize = 500;

    struct Site {
        name: String,
        x: f64,
        y: f64,
        status: MapStatus,
        city: String,
        country: String,
        peer_group: Option<String>,
        controller: String,
    }

    impl Engine {
        /// The fleet map for `q`.
        pub async fn fleet_map(&self, q: &MapQuery) -> Result<FleetMap> {
            let pool = self.store.pool();
            let mut b = Sql::new(
                "SELECT s.name, s.lat, s.lon, s.management_state, s.availability, s.critical_alarms, \
                 s.major_alarms, s.minor_alarms + s.warnings, s.city, s.country, pg.name, \
                 COALESCE(lc.name, c.name), s.alarm_status \
                 FROM subclouds s JOIN subcloud_groups g ON g.id = s.group_id \
                 LEFT JOIN peer_groups pg ON pg.id = s.peer_group_id \
                 LEFT JOIN system_controllers lc ON lc.id = pg.leader_id \
                 JOIN system_controllers c ON c.id = s.controller_id WHERE 1 = 1",
            );
            if let Some(v) = &q.peer_group {
                b.push(" AND pg.name = ").bind(v.clone());
            }
            if let Some(v) = &q.group {
                b.push(" AND g.name = ").bind(v.clone());
            }
            if let Some(v) = &q.controller {
                b.push(" AND COALESCE(lc.name, c.name) = ").bind(v.clone());
            }
            b.push(" ORDER BY s.name");
            let (sql, args) = b.finish()?;
            let mut sites = Vec::new();
            for r in sqlx::query_with(&sql, args).fetch_all(pool).await? {
                let status = MapStatus::of(
                    r.try_get::<&str, _>(3)? == "managed",
                    r.try_get::<&str, _>(4)? == "online",
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                    r.try_get::<&str, _>(12)? != AlarmStatus::Unknown.as_str(),
                );
                if q.status.is_some_and(|s| s != status) {
                    continue;
                }
                let (x, y) = project(r.try_get(2)?, r.try_get(1)?);
                sites.push(Site {
                    name: r.try_get(0)?,
                    x,
                    y,
                    status,
                    city: r.try_get(8)?,
                    country: r.try_get(9)?,
                    peer_group: r.try_get(10)?,
                    controller: r.try_get(11)?,
                });
            }
            let view_box = q.view_box();
            let (vx, vy, vw, vh) = view_box;
            let cell = q.cell_size();
            // Glyphs keep their size on screen: smaller in map units as the view narrows.
            let radius = 2.2 / f64::from(q.zoom.clamp(1, MAX_ZOOM));
            let margin = radius * 2.0;
            let in_view = |s: &Site| {
                s.x >= vx - margin
                    && s.x <= vx + vw + margin
                    && s.y >= vy - margin
                    && s.y <= vy + vh + margin
            };

            let mut totals: BTreeMap<u8, (MapStatus, u64)> = BTreeMap::new();
            let mut points: HashMap<MapStatus, Vec<(f64, f64)>> = HashMap::new();
            let mut cells: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
            let mut shown = 0u64;
            for (i, s) in sites.iter().enumerate() {
                totals.entry(s.status.rank()).or_insert((s.status, 0)).1 += 1;
                if !in_view(s) {
                    continue;
                }
                shown += 1;
                points.entry(s.status).or_default().push((s.x, s.y));
                let col = ((s.x - vx) / cell).floor();
                let row = ((s.y - vy) / cell).floor();
                if col >= 0.0
                    && row >= 0.0
                    && col < f64::from(GRID_COLUMNS)
                    && row < f64::from(GRID_COLUMNS)
                {
                    cells.entry((col as u32, row as u32)).or_default().push(i);
                }
            }
            let layers = MapStatus::ALL
                .iter()
                .rev()
                .filter_map(|st| {
                    let p = points.get(st)?;
                    Some(MapLayer {
                        status: *st,
                        count: p.len() as u64,
                        path: glyph_path(p, st.glyph(), radius),
                    })
                })
                .collect();
            let mut cell_list: Vec<MapCell> = cells
                .iter()
                .map(|((col, row), members)| describe_cell(*col, *row, members, &sites))
                .collect();
            cell_list.sort_by(|a, b| {
                b.worst
                    .rank()
                    .cmp(&a.worst.rank())
                    .then(b.sites.cmp(&a.sites))
                    .then((a.row, a.col).cmp(&(b.row, b.col)))
            });
            let selected = q.cell.map(|c| {
                let mut listed: Vec<MapSite> = cells
                    .get(&c)
                    .map(|m| {
                        m.iter()
                            .map(|i| {
                                let s = &sites[*i];
                                MapSite {
                                    name: s.name.clone(),
                                    status: s.status,
                                    city: s.city.clone(),
                                    country: s.country.clone(),
                                    peer_group: s.peer_group.clone(),
                                    controller: s.controller.clone(),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                listed.sort_by(|a, b| {
                    b.status
                        .rank()
                        .cmp(&a.status.rank())
                        .then(a.name.cmp(&b.name))
                });
                listed.truncate(MAX_LISTED);
                listed
            });
            let controllers = self.map_controllers(&sites).await?;
            Ok(FleetMap {
                query: q.clone(),
                view_box,
                radius,
                layers,
                controllers,
                cells: cell_list,
                selected,
                totals: totals.into_values().rev().collect(),
                matching: sites.len() as u64,
                in_view: shown,
                at: Millis::now(),
            })
        }

        /// Controllers with lines to the centres of the (shown) peer groups they own.
        async fn map_controllers(&self, sites: &[Site]) -> Result<Vec<MapController>> {
            let mut centres: HashMap<(&str, &str), (f64, f64, u64)> = HashMap::new();
            for s in sites {
                if let Some(g) = &s.peer_group {
                    let e = centres
                        .entry((s.controller.as_str(), g.as_str()))
                        .or_default();
                    e.0 += s.x;
                    e.1 += s.y;
                    e.2 += 1;
                }
            }
            let rows = sqlx::query(
                "SELECT name, lat, lon, availability FROM system_controllers ORDER BY name",
            )
            .fetch_all(self.store.pool())
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let name: String = r.try_get(0)?;
                let (x, y) = project(r.try_get(2)?, r.try_get(1)?);
                let mut groups: Vec<(String, f64, f64, u64)> = centres
                    .iter()
                    .filter(|((c, _), _)| *c == name)
                    .map(|((_, g), (sx, sy, n))| {
                        (g.to_string(), sx / *n as f64, sy / *n as f64, *n)
                    })
                    .collect();
                groups.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(MapController {
                    name,
                    availability: r.try_get(3)?,
                    x,
                    y,
                    groups,
                });
            }
            Ok(out)
        }
    }

    fn describe_cell(col: u32, row: u32, members: &[usize], sites: &[Site]) -> MapCell {
        let mut by: BTreeMap<u8, (MapStatus, u64)> = BTreeMap::new();
        let mut places: HashMap<(&str, &str), u64> = HashMap::new();
        for i in members {
            let s = &sites[*i];
            by.entry(s.status.rank()).or_insert((s.status, 0)).1 += 1;
            *places
                .entry((s.city.as_str(), s.country.as_str()))
                .or_default() += 1;
        }
        let by_status: Vec<(MapStatus, u64)> = by.into_values().rev().collect();
        let worst = by_status.first().map(|b| b.0).unwrap_or(MapStatus::Ok);
        let mut top: Vec<((&str, &str), u64)> = places.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let place = match top.as_slice() {
            [] => String::new(),
            [((city, country), _)] => format!("{city}, {country}"),
            [((city, country), _), rest @ ..] => {
                format!("{city}, {country} and {} more place(s)", rest.len())
            }
        };
        MapCell {
            col,
            row,
            sites: members.len() as u64,
            worst,
            by_status,
            place,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_the_worst_condition() {
        assert_eq!(
            MapStatus::of(false, false, 3, 0, 0, true),
            MapStatus::Unmanaged
        );
        assert_eq!(
            MapStatus::of(true, false, 0, 0, 0, true),
            MapStatus::Offline
        );
        assert_eq!(
            MapStatus::of(true, true, 1, 5, 5, true),
            MapStatus::Critical
        );
        assert_eq!(MapStatus::of(true, true, 0, 1, 5, true), MapStatus::Major);
        assert_eq!(MapStatus::of(true, true, 0, 0, 1, true), MapStatus::Minor);
        assert_eq!(MapStatus::of(true, true, 0, 0, 0, true), MapStatus::Ok);
        // Not measured: never OK, but what is known to be wrong still wins.
        assert_eq!(
            MapStatus::of(true, true, 0, 0, 0, false),
            MapStatus::Unknown
        );
        assert_eq!(MapStatus::of(true, true, 0, 0, 1, false), MapStatus::Minor);
        assert_eq!(
            MapStatus::of(true, false, 0, 0, 0, false),
            MapStatus::Offline
        );
        // Worst first in ALL, by rank.
        let mut by_rank = MapStatus::ALL.to_vec();
        by_rank.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        assert_eq!(by_rank, MapStatus::ALL.to_vec());
        // Every status has its own shape except OK and unmanaged, and minor and unknown (told
        // apart by style: filled or hollow).
        let shapes: std::collections::HashSet<_> = MapStatus::ALL
            .iter()
            .map(|s| format!("{:?}", s.glyph()))
            .collect();
        assert_eq!(shapes.len(), 5);
    }

    #[test]
    fn url_parameters_are_parsed_strictly() {
        let q = MapQuery::from_params([
            ("region", "europe"),
            ("status", "critical"),
            ("cell", "3,4"),
        ])
        .unwrap();
        assert_eq!(
            (q.zoom, q.status, q.cell),
            (4, Some(MapStatus::Critical), Some((3, 4)))
        );
        let (x, _) = project(12.0, 48.0);
        assert!((q.x - x).abs() < 1e-9);
        // Explicit parts override the region's.
        let q = MapQuery::from_params([("z", "8"), ("region", "asia")]).unwrap();
        assert_eq!(q.zoom, 8);
        for (k, v) in [
            ("region", "atlantis"),
            ("z", "3"),
            ("z", "128"),
            ("x", "-1"),
            ("x", "NaN"),
            ("y", "99999"),
            ("status", "fine"),
            ("cell", "24,0"),
            ("cell", "a,b"),
            ("peer_group", "bad\u{0}name"),
        ] {
            let e = MapQuery::from_params([(k, v)]).unwrap_err();
            assert_eq!(e.field, k, "{k}={v}: {e}");
        }
        // Empty values and unknown parameters are ignored.
        assert_eq!(
            MapQuery::from_params([("status", ""), ("utm_source", "portal")]).unwrap(),
            MapQuery::default()
        );
    }

    #[test]
    fn a_query_string_parses_as_its_parameters_do() {
        let from_string = MapQuery::from_query_string("view", "?region=asia&status=critical");
        let from_params = MapQuery::from_params([("region", "asia"), ("status", "critical")]);
        assert_eq!(from_string.unwrap(), from_params.unwrap());
        // Percent-escapes are decoded before the values are checked.
        let q = MapQuery::from_query_string("view", "peer_group=east%20coast").unwrap();
        assert_eq!(q.peer_group.as_deref(), Some("east coast"));
        // Not a query string at all: named by the caller's field; a bad value: by its own name.
        assert_eq!(
            MapQuery::from_query_string("target", "z=%zz")
                .unwrap_err()
                .field,
            "target"
        );
        assert_eq!(
            MapQuery::from_query_string("target", "z=3")
                .unwrap_err()
                .field,
            "z"
        );
    }

    #[test]
    fn the_view_stays_inside_the_world() {
        let q = MapQuery {
            x: 0.0,
            y: 0.0,
            zoom: 4,
            ..MapQuery::default()
        };
        let (x, y, w, h) = q.view_box();
        assert_eq!((x, y), (0.0, 0.0));
        assert!((w - MAP_WIDTH / 4.0).abs() < 1e-9 && (h - MAP_HEIGHT / 4.0).abs() < 1e-9);
        let q = MapQuery {
            x: MAP_WIDTH,
            y: MAP_HEIGHT,
            zoom: 2,
            ..MapQuery::default()
        };
        let (x, y, w, h) = q.view_box();
        assert!((x + w - MAP_WIDTH).abs() < 1e-9 && (y + h - MAP_HEIGHT).abs() < 1e-9);
        let whole = MapQuery::default().view_box();
        assert_eq!(whole, (0.0, 0.0, MAP_WIDTH, MAP_HEIGHT));
    }
}
