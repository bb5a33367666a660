//! The fleet map's geometry: the Equal Earth projection (Šavrič, Patterson, Jenny 2018),
//! country outlines from world-atlas TopoJSON projected into an SVG once, and compact glyph
//! paths for many sites (one path per status, not one element per site). Pure: no I/O.

/// Width of the projected world in map units (the SVG user space).
pub const MAP_WIDTH: f64 = 1000.0;

/// Height of the projected world: MAP_WIDTH over the Equal Earth aspect ratio (≈ 2.05458).
/// `f64::sqrt`/`asin` are not `const`, so the unscaled extents are hard-coded (a test checks
/// them against the formulas).
pub const MAP_HEIGHT: f64 = MAP_WIDTH * Y_MAX / X_MAX;

/// Unscaled x at lon = 180°, lat = 0 (x is widest at the equator): 2√3·π / (3·A1).
const X_MAX: f64 = 2.706_629_983_696_074_3;
/// Unscaled y at lat = 90° (θ = π/3).
const Y_MAX: f64 = 1.317_362_759_157_413_3;

const A1: f64 = 1.340264;
const A2: f64 = -0.081106;
const A3: f64 = 0.000893;
const A4: f64 = 0.003796;

/// Equal Earth before scaling; radians in, unscaled x/y out (y grows north).
fn equal_earth(lon: f64, lat: f64) -> (f64, f64) {
    let m = 3f64.sqrt() / 2.0;
    let theta = (m * lat.sin()).asin();
    let t2 = theta * theta;
    let t6 = t2 * t2 * t2;
    let t8 = t6 * t2;
    let x = 2.0 * 3f64.sqrt() * lon * theta.cos()
        / (3.0 * (9.0 * A4 * t8 + 7.0 * A3 * t6 + 3.0 * A2 * t2 + A1));
    let y = theta * (A4 * t8 + A3 * t6 + A2 * t2 + A1);
    (x, y)
}

/// Projects WGS84 degrees to map units: x in [0, MAP_WIDTH] west to east, y in
/// [0, MAP_HEIGHT] north to south (SVG y grows downward). Out-of-range input is clamped;
/// non-finite input lands on the centre.
pub fn project(lon: f64, lat: f64) -> (f64, f64) {
    if !lon.is_finite() || !lat.is_finite() {
        return (MAP_WIDTH / 2.0, MAP_HEIGHT / 2.0);
    }
    let lon = lon.clamp(-180.0, 180.0).to_radians();
    let lat = lat.clamp(-90.0, 90.0).to_radians();
    let (x, y) = equal_earth(lon, lat);
    let scale = MAP_WIDTH / (2.0 * X_MAX);
    // Clamp absorbs rounding at the edges (e.g. -1e-13 at lon -180).
    (
        (MAP_WIDTH / 2.0 + x * scale).clamp(0.0, MAP_WIDTH),
        (MAP_HEIGHT / 2.0 - y * scale).clamp(0.0, MAP_HEIGHT),
    )
}

/// Appends compact SVG path data. Coordinates are integers in units of 1/`per_unit` map
/// units, so relative steps are exact and rounding never accumulates.
struct PathWriter {
    out: String,
    per_unit: i64,
    /// Last command letter, so repeated commands can be implicit.
    cmd: char,
    /// Whether the next number needs a separator (none after a letter or before a '-').
    sep: bool,
}

impl PathWriter {
    fn new(per_unit: i64) -> Self {
        PathWriter {
            out: String::new(),
            per_unit,
            cmd: ' ',
            sep: false,
        }
    }

    fn cmd(&mut self, c: char) {
        self.out.push(c);
        self.cmd = c;
        self.sep = false;
    }

    /// Emits `c` unless it is the current command ('M' continues as 'L', 'm' as 'l').
    fn cmd_implicit(&mut self, c: char) {
        let continues =
            self.cmd == c || (self.cmd == 'M' && c == 'L') || (self.cmd == 'm' && c == 'l');
        if continues {
            self.cmd = c;
        } else {
            self.cmd(c);
        }
    }

    fn num(&mut self, v: i64, sep: char) {
        if self.sep && v >= 0 {
            self.out.push(sep);
        }
        push_fixed(&mut self.out, v, self.per_unit);
        self.sep = true;
    }

    /// A literal number (arc rotation and flags are not coordinates, so never scaled).
    fn raw(&mut self, digit: char, sep: char) {
        if self.sep {
            self.out.push(sep);
        }
        self.out.push(digit);
        self.sep = true;
    }

    fn pair(&mut self, x: i64, y: i64) {
        self.num(x, ' ');
        self.num(y, ',');
    }

    /// A relative line, as `h`/`v` when axis-aligned.
    fn line_by(&mut self, dx: i64, dy: i64) {
        if dy == 0 {
            self.cmd_implicit('h');
            self.num(dx, ' ');
        } else if dx == 0 {
            self.cmd_implicit('v');
            self.num(dy, ' ');
        } else {
            self.cmd_implicit('l');
            self.pair(dx, dy);
        }
    }

    fn close(&mut self) {
        self.cmd('z');
    }
}

/// Writes `v / per_unit` (per_unit a power of ten) without trailing or leading zeros: 12.3,
/// -.5, 4.
fn push_fixed(out: &mut String, v: i64, per_unit: i64) {
    use std::fmt::Write;
    if v < 0 {
        out.push('-');
    }
    let a = v.unsigned_abs();
    let per = per_unit.unsigned_abs().max(1);
    let (int, mut frac) = (a / per, a % per);
    if int > 0 || frac == 0 {
        let _ = write!(out, "{int}");
    }
    if frac > 0 {
        out.push('.');
        let mut digit = per / 10;
        while frac > 0 && digit > 0 {
            out.push(char::from(b'0' + (frac / digit) as u8));
            frac %= digit;
            digit /= 10;
        }
    }
}

/// Rounds map units to integer steps of 1/`per_unit`; bounded so differences can't overflow.
fn to_steps(v: f64, per_unit: i64) -> i64 {
    (v * per_unit as f64).round().clamp(-1e12, 1e12) as i64
}

/// A site marker shape; each status gets its own so colour is never the only cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glyph {
    Circle,
    Square,
    /// Point up.
    Triangle,
    Diamond,
    /// A filled plus sign (one 12-corner polygon, so it fills and strokes cleanly).
    Cross,
}

/// One SVG path `d` drawing `glyph` (half-size `r`) at every point (map units), for a fill
/// with the default nonzero rule (all glyphs wind clockwise, so overlaps merge).
/// Coordinates round to 0.1 (0.01 when r < 1). Identical points after rounding are drawn once
/// and points are reordered so each glyph's move is short and relative: at r = 2.2 about
/// 22 bytes a site for squares and triangles, 28 for circles, 33 for diamonds, 58 for the
/// 12-corner cross. Non-finite points, and a non-positive or non-finite `r`, draw nothing.
pub fn glyph_path(points: &[(f64, f64)], glyph: Glyph, r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        return String::new();
    }
    let per_unit = if r < 1.0 { 100 } else { 10 };
    let rr = to_steps(r.min(1e6), per_unit).max(1);
    let mut pts: Vec<(i64, i64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| (to_steps(x, per_unit), to_steps(y, per_unit)))
        .collect();
    // Bands of 10 map units, west to east inside each: moves stay a few characters long.
    let band = 10 * per_unit;
    pts.sort_unstable_by_key(|&(x, y)| (y.div_euclid(band), x, y));
    pts.dedup();

    // Every glyph is one closed subpath, so after `z` the pen is back at its start.
    let start = |(x, y): (i64, i64)| match glyph {
        Glyph::Circle => (x - rr, y),
        Glyph::Square => (x - rr, y - rr),
        Glyph::Triangle | Glyph::Diamond => (x, y - rr),
        Glyph::Cross => (x - (rr / 3).max(1), y - rr),
    };
    let mut w = PathWriter::new(per_unit);
    let mut pen: Option<(i64, i64)> = None;
    for p in pts {
        let (sx, sy) = start(p);
        match pen {
            None => {
                w.cmd('M');
                w.pair(sx, sy);
            }
            Some((px, py)) => {
                w.cmd('m');
                w.pair(sx - px, sy - py);
            }
        }
        pen = Some((sx, sy));
        glyph_body(&mut w, glyph, rr);
        w.close();
    }
    w.out
}

/// The relative outline of one glyph from its start point (see `glyph_path`).
fn glyph_body(w: &mut PathWriter, glyph: Glyph, r: i64) {
    match glyph {
        Glyph::Circle => {
            // One large arc to a point one step below the start: a full circle less an
            // invisible sliver, half the bytes of the usual two half-circle arcs.
            w.cmd('a');
            w.pair(r, r);
            w.raw('0', ' '); // rotation
            w.raw('1', ' '); // large arc
            w.raw('1', ','); // sweep: clockwise, so the centre is east of the start
            w.pair(0, 1);
        }
        Glyph::Square => {
            w.line_by(2 * r, 0);
            w.line_by(0, 2 * r);
            w.line_by(-2 * r, 0);
        }
        Glyph::Triangle => {
            w.line_by(r, 2 * r);
            w.line_by(-2 * r, 0);
        }
        Glyph::Diamond => {
            w.line_by(r, r);
            w.line_by(-r, r);
            w.line_by(-r, -r);
        }
        Glyph::Cross => {
            let a = (r / 3).max(1); // half the bar width
            let arm = (r - a).max(0);
            for (dx, dy) in [
                (2 * a, 0),
                (0, arm),
                (arm, 0),
                (0, 2 * a),
                (-arm, 0),
                (0, arm),
                (-2 * a, 0),
                (0, -arm),
                (-arm, 0),
                (0, -2 * a),
                (arm, 0),
            ] {
                w.line_by(dx, dy);
            }
        }
    }
}

/// The path of a single glyph, for a legend.
pub fn glyph_legend_path(glyph: Glyph, cx: f64, cy: f64, r: f64) -> String {
    glyph_path(&[(cx, cy)], glyph, r)
}

#[cfg(feature = "store")]
pub use world::world_svg;

#[cfg(feature = "store")]
mod world {
    use super::{project, to_steps, PathWriter, MAP_HEIGHT, MAP_WIDTH};
    use serde_json::Value;

    const STEPS: i64 = 10; // 0.1 map units: under a pixel at 1000 px wide

    const STYLE: &str = ".sphere{fill:#f5f7fa;stroke:#c8ccd2;stroke-width:.5}\
.countries path{fill:#e4e6ea;stroke:#fff;stroke-width:.4;stroke-linejoin:round}\
@media (prefers-color-scheme:dark){.sphere{fill:#161a20;stroke:#2a3038}\
.countries path{fill:#2a3038;stroke:#12161b}}";

    /// A complete SVG of the world's countries from world-atlas TopoJSON (e.g.
    /// `countries-110m.json`), projected with [`super::project`] into
    /// `0 0 MAP_WIDTH MAP_HEIGHT`. Each country is a `<path data-name=…>`. Malformed input
    /// (bad JSON, missing fields, an arc index out of range) is an error naming the problem.
    pub fn world_svg(topojson: &str) -> Result<String, String> {
        let topo: Value =
            serde_json::from_str(topojson).map_err(|e| format!("world map: invalid JSON: {e}"))?;
        let arcs = decode_arcs(&topo)?;
        let geometries = topo
            .pointer("/objects/countries/geometries")
            .and_then(Value::as_array)
            .ok_or("world map: missing objects.countries.geometries")?;

        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {MAP_WIDTH} {MAP_HEIGHT}\" \
role=\"img\" aria-label=\"World map\"><title>World map</title><style>{STYLE}</style>"
        );
        svg.push_str("<path class=\"sphere\" d=\"");
        svg.push_str(&sphere_path());
        svg.push_str("\"/><g class=\"countries\">");
        for (i, g) in geometries.iter().enumerate() {
            let name = g
                .pointer("/properties/name")
                .and_then(Value::as_str)
                .or_else(|| g.get("id").and_then(Value::as_str))
                .unwrap_or("");
            let what = || format!("world map: geometry {i} ({name})");
            // Polygon: rings; MultiPolygon: polygons of rings. Anything else has no area.
            let polygons: Vec<&Value> = match (g.get("type").and_then(Value::as_str), g.get("arcs"))
            {
                (Some("Polygon"), Some(a)) => vec![a],
                (Some("MultiPolygon"), Some(a)) => a
                    .as_array()
                    .ok_or_else(|| format!("{}: arcs is not an array", what()))?
                    .iter()
                    .collect(),
                _ => continue,
            };
            let mut w = PathWriter::new(STEPS);
            for polygon in polygons {
                let rings = polygon
                    .as_array()
                    .ok_or_else(|| format!("{}: polygon is not an array", what()))?;
                for ring in rings {
                    let ring = stitch(ring, &arcs).map_err(|e| format!("{}: {e}", what()))?;
                    write_ring(&mut w, &ring);
                }
            }
            if w.out.is_empty() {
                continue; // every ring smaller than the rounding
            }
            svg.push_str("<path data-name=\"");
            push_escaped(&mut svg, name);
            svg.push_str("\" d=\"");
            svg.push_str(&w.out);
            svg.push_str("\"/>");
        }
        svg.push_str("</g></svg>\n");
        Ok(svg)
    }

    /// Arcs as lon/lat points. With a `transform` the positions are quantized and
    /// delta-encoded; without one they are absolute (TopoJSON spec).
    fn decode_arcs(topo: &Value) -> Result<Vec<Vec<(f64, f64)>>, String> {
        let transform = match topo.get("transform") {
            None | Some(Value::Null) => None,
            Some(t) => {
                let pair = |key: &str| -> Result<(f64, f64), String> {
                    let v = t
                        .get(key)
                        .and_then(Value::as_array)
                        .ok_or_else(|| format!("world map: missing transform.{key}"))?;
                    match (
                        v.first().and_then(Value::as_f64),
                        v.get(1).and_then(Value::as_f64),
                    ) {
                        (Some(a), Some(b)) => Ok((a, b)),
                        _ => Err(format!(
                            "world map: transform.{key} is not a pair of numbers"
                        )),
                    }
                };
                Some((pair("scale")?, pair("translate")?))
            }
        };
        let arcs = topo
            .get("arcs")
            .and_then(Value::as_array)
            .ok_or("world map: missing arcs")?;
        arcs.iter()
            .enumerate()
            .map(|(i, arc)| {
                let positions = arc
                    .as_array()
                    .ok_or_else(|| format!("world map: arc {i} is not an array"))?;
                let (mut x, mut y) = (0.0, 0.0);
                positions
                    .iter()
                    .map(|p| {
                        let (px, py) = match p.as_array().map(|p| {
                            (
                                p.first().and_then(Value::as_f64),
                                p.get(1).and_then(Value::as_f64),
                            )
                        }) {
                            Some((Some(px), Some(py))) => (px, py),
                            _ => {
                                return Err(format!("world map: arc {i} has a malformed position"))
                            }
                        };
                        Ok(match transform {
                            Some(((sx, sy), (tx, ty))) => {
                                x += px;
                                y += py;
                                (x * sx + tx, y * sy + ty)
                            }
                            None => (px, py),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// One ring's points from its arc indices (negative: `!i` reversed).
    fn stitch(ring: &Value, arcs: &[Vec<(f64, f64)>]) -> Result<Vec<(f64, f64)>, String> {
        let indices = ring.as_array().ok_or("ring is not an array")?;
        let mut out: Vec<(f64, f64)> = Vec::new();
        for index in indices {
            let i = index
                .as_i64()
                .ok_or_else(|| format!("arc index {index} is not an integer"))?;
            let (k, reversed) = if i >= 0 { (i, false) } else { (!i, true) };
            let arc = usize::try_from(k)
                .ok()
                .and_then(|k| arcs.get(k))
                .ok_or_else(|| format!("arc index {i} out of range ({} arcs)", arcs.len()))?;
            // Each arc after the first starts where the previous one ended.
            let skip = usize::from(!out.is_empty());
            if reversed {
                out.extend(arc.iter().rev().skip(skip));
            } else {
                out.extend(arc.iter().skip(skip));
            }
        }
        Ok(out)
    }

    /// Writes one ring. A ring that jumps across the antimeridian is cut there into open
    /// pieces ending on the map's edge (the fill closes each piece along the edge), instead
    /// of a line across the whole map.
    fn write_ring(w: &mut PathWriter, ring: &[(f64, f64)]) {
        let mut pts = ring;
        if pts.len() > 1 && pts.first() == pts.last() {
            pts = &pts[..pts.len() - 1];
        }
        let n = pts.len();
        let jumps = |i: usize| (pts[(i + 1) % n].0 - pts[i].0).abs() > 180.0;
        let Some(first_jump) = (0..n).find(|&i| jumps(i)) else {
            write_piece(w, pts.iter().copied(), true);
            return;
        };
        // Start at a cut so no piece wraps past the ring's end.
        let cut = |i: usize| crossing(pts[i], pts[(i + 1) % n]);
        let (edge, lat) = cut(first_jump);
        let mut piece = vec![(-edge, lat)];
        for step in 1..=n {
            let i = (first_jump + step) % n;
            piece.push(pts[i]);
            if jumps(i) {
                let (edge, lat) = cut(i);
                piece.push((edge, lat));
                write_piece(w, piece.drain(..), false);
                piece.push((-edge, lat));
            }
        }
    }

    /// Where the segment a→b, which jumps across the antimeridian, meets it: the edge
    /// longitude on a's side and the latitude there.
    fn crossing(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
        let edge = if a.0 > b.0 { 180.0 } else { -180.0 };
        let b_lon = b.0 + 2.0 * edge; // b unwrapped onto a's side
        let t = ((edge - a.0) / (b_lon - a.0)).clamp(0.0, 1.0);
        let t = if t.is_finite() { t } else { 0.0 };
        (edge, a.1 + t * (b.1 - a.1))
    }

    /// Projects, rounds and writes one subpath; drops repeats and anything degenerate.
    fn write_piece(w: &mut PathWriter, lonlat: impl Iterator<Item = (f64, f64)>, closed: bool) {
        let mut pts: Vec<(i64, i64)> = lonlat
            .map(|(lon, lat)| {
                let (x, y) = project(lon, lat);
                (to_steps(x, STEPS), to_steps(y, STEPS))
            })
            .collect();
        pts.dedup();
        if closed && pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        if pts.len() < if closed { 3 } else { 2 } {
            return;
        }
        w.cmd('M');
        w.pair(pts[0].0, pts[0].1);
        for s in pts.windows(2) {
            w.line_by(s[1].0 - s[0].0, s[1].1 - s[0].1);
        }
        if closed {
            w.close();
        }
    }

    /// The outline of the projected world: the west edge north, then the east edge south.
    fn sphere_path() -> String {
        let mut w = PathWriter::new(STEPS);
        let west = (-45..=45).map(|k| (-180.0, f64::from(k * 2)));
        let east = (-45..=45).rev().map(|k| (180.0, f64::from(k * 2)));
        write_piece(&mut w, west.chain(east), true);
        w.out
    }

    fn push_escaped(out: &mut String, s: &str) {
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn extents_match_the_formulas() {
        let (x, _) = equal_earth(PI, 0.0);
        let (_, y) = equal_earth(0.0, PI / 2.0);
        assert!(
            (x - X_MAX).abs() < 1e-12 && (y - Y_MAX).abs() < 1e-12,
            "{x} {y}"
        );
        // x is widest at the equator, so the world really spans [0, MAP_WIDTH].
        for lat in 1..=90 {
            assert!(equal_earth(PI, f64::from(lat).to_radians()).0 < X_MAX);
        }
        assert!(
            (MAP_WIDTH / MAP_HEIGHT - 2.05458).abs() < 1e-5,
            "{}",
            MAP_WIDTH / MAP_HEIGHT
        );
    }

    #[test]
    fn projection_spans_the_map_north_up() {
        let (cx, cy) = project(0.0, 0.0);
        assert!(close(cx, MAP_WIDTH / 2.0) && close(cy, MAP_HEIGHT / 2.0));
        assert!(close(project(-180.0, 0.0).0, 0.0));
        assert!(close(project(180.0, 0.0).0, MAP_WIDTH));
        assert!(close(project(0.0, 90.0).1, 0.0));
        assert!(close(project(0.0, -90.0).1, MAP_HEIGHT));
        // Equal Earth has flat poles: the pole line is shorter than the equator.
        assert!(project(180.0, 90.0).0 < MAP_WIDTH * 0.8);

        let oslo = project(10.75, 59.91);
        let cape_town = project(18.42, -33.92);
        assert!(oslo.1 < cape_town.1);
        let tokyo = project(139.69, 35.69);
        let london = project(-0.13, 51.51);
        assert!(tokyo.0 > london.0);
        assert!(london.0 < MAP_WIDTH / 2.0 && tokyo.0 > MAP_WIDTH / 2.0);
    }

    #[test]
    fn projection_never_leaves_the_map() {
        let odd = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            0.0,
            200.0,
            -95.0,
        ];
        for &lon in &odd {
            for &lat in &odd {
                let (x, y) = project(lon, lat);
                assert!(
                    (0.0..=MAP_WIDTH).contains(&x) && (0.0..=MAP_HEIGHT).contains(&y),
                    "{lon},{lat}"
                );
            }
        }
        assert_eq!(project(f64::NAN, 10.0), (MAP_WIDTH / 2.0, MAP_HEIGHT / 2.0));
        // Clamped, not wrapped.
        assert_eq!(project(200.0, 100.0), project(180.0, 90.0));
    }

    #[test]
    fn numbers_are_compact() {
        let f = |v, per| {
            let mut s = String::new();
            push_fixed(&mut s, v, per);
            s
        };
        assert_eq!(f(123, 10), "12.3");
        assert_eq!(f(-5, 10), "-.5");
        assert_eq!(f(120, 10), "12");
        assert_eq!(f(0, 10), "0");
        assert_eq!(f(-1205, 100), "-12.05");
        assert_eq!(f(1250, 100), "12.5");
    }

    /// Absolute points of a path made of M/m, l/h/v, a (endpoint only) and z.
    fn path_points(d: &str) -> Vec<(f64, f64)> {
        let mut tokens: Vec<String> = Vec::new();
        let mut num = String::new();
        let flush = |num: &mut String, tokens: &mut Vec<String>| {
            if !num.is_empty() {
                tokens.push(std::mem::take(num));
            }
        };
        for c in d.chars() {
            match c {
                '0'..='9' => num.push(c),
                '.' if num.contains('.') => {
                    flush(&mut num, &mut tokens);
                    num.push(c);
                }
                '.' => num.push(c),
                '-' => {
                    flush(&mut num, &mut tokens);
                    num.push(c);
                }
                ' ' | ',' => flush(&mut num, &mut tokens),
                c => {
                    flush(&mut num, &mut tokens);
                    tokens.push(c.to_string());
                }
            }
        }
        flush(&mut num, &mut tokens);

        let (mut out, mut cmd, mut args) = (Vec::new(), ' ', Vec::<f64>::new());
        let (mut cur, mut start) = ((0.0, 0.0), (0.0, 0.0));
        let arity = |c: char| match c {
            'M' | 'm' | 'L' | 'l' => 2,
            'h' | 'v' => 1,
            'a' => 7,
            _ => 0,
        };
        for t in tokens {
            if let Ok(v) = t.parse::<f64>() {
                args.push(v);
                if args.len() == arity(cmd) {
                    cur = match cmd {
                        'M' | 'L' => (args[0], args[1]),
                        'm' | 'l' => (cur.0 + args[0], cur.1 + args[1]),
                        'h' => (cur.0 + args[0], cur.1),
                        'v' => (cur.0, cur.1 + args[0]),
                        _ => (cur.0 + args[5], cur.1 + args[6]),
                    };
                    if cmd == 'M' || cmd == 'm' {
                        start = cur;
                        cmd = if cmd == 'M' { 'L' } else { 'l' };
                    }
                    out.push(cur);
                    args.clear();
                }
            } else {
                cmd = t.chars().next().unwrap_or(' ');
                assert!("Mmlhvaz".contains(cmd), "unexpected command {cmd} in {d}");
                if cmd == 'z' {
                    cur = start;
                }
            }
        }
        assert!(args.is_empty(), "dangling numbers in {d}");
        out
    }

    const GLYPHS: [Glyph; 5] = [
        Glyph::Circle,
        Glyph::Square,
        Glyph::Triangle,
        Glyph::Diamond,
        Glyph::Cross,
    ];

    /// Deterministic uniform numbers in [0, 1).
    fn xorshift(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Bytes a site may cost at whole-world zoom (r = 2.2). Diamond: six 3-character numbers;
    /// the plus has 11 sides (it marks the rare offline sites).
    fn budget(glyph: Glyph) -> f64 {
        match glyph {
            Glyph::Circle | Glyph::Square | Glyph::Triangle => 30.0,
            Glyph::Diamond => 35.0,
            Glyph::Cross => 60.0,
        }
    }

    #[test]
    fn glyphs_of_a_fleet_stay_within_budget() {
        // Like the demo fleet: sites scattered around real cities.
        let cities = crate::fleet::cities::CITIES;
        let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
        let points: Vec<(f64, f64)> = (0..5000)
            .map(|i| {
                let c = &cities[i % cities.len()];
                project(c.lon + (rnd() - 0.5) * 0.9, c.lat + (rnd() - 0.5) * 0.7)
            })
            .collect();
        for glyph in GLYPHS {
            let d = glyph_path(&points, glyph, 2.2);
            let per_point = d.len() as f64 / points.len() as f64;
            eprintln!("fleet-like, {glyph:?} r=2.2: {per_point:.1} bytes/site");
            assert!(d.starts_with('M'));
            assert!(
                per_point < budget(glyph),
                "{glyph:?}: {per_point} bytes/site"
            );
        }
    }

    #[test]
    fn glyphs_are_compact_and_centred() {
        assert_eq!(glyph_path(&[], Glyph::Circle, 2.0), "");
        assert_eq!(glyph_path(&[(1.0, 1.0)], Glyph::Circle, 0.0), "");
        assert_eq!(glyph_path(&[(f64::NAN, 1.0)], Glyph::Square, 2.0), "");

        // The worst case: distinct points spread evenly over the whole map.
        let mut rnd = xorshift(0x2545_f491_4f6c_dd1d);
        let points: Vec<(f64, f64)> = (0..5000)
            .map(|_| (rnd() * MAP_WIDTH, rnd() * MAP_HEIGHT))
            .collect();
        for glyph in GLYPHS {
            for r in [2.2, 0.55] {
                let d = glyph_path(&points, glyph, r);
                let per_point = d.len() as f64 / points.len() as f64;
                eprintln!("spread, {glyph:?} r={r}: {per_point:.1} bytes/point");
                assert!(d.starts_with('M'));
                assert!(!d.contains("NaN") && !d.contains("inf"));
                // Whole-world zoom is the heavy case; zoomed in, fewer sites are in view.
                if r > 1.0 {
                    assert!(
                        per_point < budget(glyph),
                        "{glyph:?} r={r}: {per_point} bytes/point"
                    );
                }
                // Only points that round to the same spot are merged.
                let drawn = d.matches('z').count();
                assert!(
                    drawn <= points.len() && drawn > points.len() * 99 / 100,
                    "{drawn}"
                );
            }
        }

        // Every glyph's outline stays within r of its point, and reaches r on both axes.
        for glyph in GLYPHS {
            let d = glyph_legend_path(glyph, 100.0, 50.0, 3.0);
            let pts = path_points(&d);
            assert!(
                pts.iter().all(
                    |&(x, y)| (x - 100.0).abs() <= 3.0 + 1e-9 && (y - 50.0).abs() <= 3.0 + 1e-9
                ),
                "{glyph:?}: {d}"
            );
            if glyph != Glyph::Circle {
                let max = |f: fn(&(f64, f64)) -> f64| pts.iter().map(f).fold(f64::MIN, f64::max);
                assert!(
                    close(max(|p| p.0), 103.0) && close(max(|p| p.1), 53.0),
                    "{glyph:?}: {d}"
                );
            }
        }
        assert_eq!(
            glyph_legend_path(Glyph::Square, 10.0, 20.0, 2.0),
            "M8,18h4v4h-4z"
        );
        assert_eq!(
            glyph_legend_path(Glyph::Circle, 10.0, 20.0, 2.0),
            "M8,20a2,2 0 1,1 0,.1z"
        );
        assert_eq!(
            glyph_legend_path(Glyph::Triangle, 10.0, 20.0, 0.5),
            "M10,19.5l.5,1h-1z"
        );
    }

    #[test]
    fn the_circle_arc_is_centred_on_the_point() {
        let d = glyph_legend_path(Glyph::Circle, 100.0, 50.0, 3.0);
        assert_eq!(d, "M97,50a3,3 0 1,1 0,.1z");
        // Centre of the arc by the SVG spec's endpoint-to-centre conversion (F.6.5), rx = ry.
        let ((x1, y1), (x2, y2), r): ((f64, f64), (f64, f64), f64) =
            ((97.0, 50.0), (97.0, 50.1), 3.0);
        let (large, sweep) = (true, true);
        let (hx, hy) = ((x1 - x2) / 2.0, (y1 - y2) / 2.0);
        let k = ((r * r - hx * hx - hy * hy) / (hx * hx + hy * hy)).sqrt();
        let k = if large != sweep { k } else { -k };
        let (cx, cy) = (k * hy + (x1 + x2) / 2.0, -k * hx + (y1 + y2) / 2.0);
        assert!(
            (cx - 100.0).abs() < 0.01 && (cy - 50.05).abs() < 0.01,
            "{cx},{cy}"
        );
    }

    #[test]
    fn relative_moves_land_on_every_point() {
        let points = [
            (500.0, 200.0),
            (10.0, 480.0),
            (10.0, 480.0),
            (999.9, 0.1),
            (333.3, 250.05),
        ];
        let d = glyph_path(&points, Glyph::Square, 1.5);
        assert_eq!(d.matches('z').count(), 4, "duplicates are drawn once: {d}");
        // Each square's first corner is its point minus r.
        let corners: Vec<(f64, f64)> = path_points(&d).into_iter().step_by(4).collect();
        for &(x, y) in &points {
            let want = (
                (x * 10.0).round() / 10.0 - 1.5,
                (y * 10.0).round() / 10.0 - 1.5,
            );
            assert!(
                corners
                    .iter()
                    .any(|c| (c.0 - want.0).abs() < 1e-6 && (c.1 - want.1).abs() < 1e-6),
                "{x},{y} in {d}"
            );
        }
    }

    #[cfg(feature = "store")]
    mod world_map {
        use super::super::*;
        use super::path_points;

        const WORLD: &str = include_str!("../../../server/assets/world-atlas/countries-110m.json");

        #[test]
        fn world_svg_draws_every_country_inside_the_map() {
            let svg = world_svg(WORLD).unwrap();
            eprintln!("world svg: {} bytes", svg.len());
            assert!(svg.len() < 150_000, "{} bytes", svg.len());
            assert!(
                svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 ")
            );
            assert!(svg.contains("<title>World map</title>"));
            assert!(svg.contains("@media (prefers-color-scheme:dark)"));
            assert!(svg.trim_end().ends_with("</g></svg>"));

            let topo: serde_json::Value = serde_json::from_str(WORLD).unwrap();
            let countries = topo["objects"]["countries"]["geometries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["type"].is_string() && g["arcs"].is_array())
                .count();
            assert_eq!(countries, 177);
            assert_eq!(svg.matches("<path data-name=").count(), countries);
            for name in [
                "France",
                "Brazil",
                "Russia",
                "Fiji",
                "Antarctica",
                "Bosnia and Herz.",
            ] {
                assert!(svg.contains(&format!("data-name=\"{name}\"")), "{name}");
            }
            assert!(!svg.contains("NaN") && !svg.contains("inf"));

            let mut paths = 0;
            for d in svg
                .split(" d=\"")
                .skip(1)
                .map(|s| s.split('"').next().unwrap())
            {
                paths += 1;
                for (x, y) in path_points(d) {
                    assert!(
                        (-1.0..=MAP_WIDTH + 1.0).contains(&x)
                            && (-1.0..=MAP_HEIGHT + 1.0).contains(&y),
                        "{x},{y}"
                    );
                }
            }
            assert_eq!(paths, countries + 1); // plus the sphere
        }

        #[test]
        fn antimeridian_rings_are_cut_not_drawn_across() {
            let svg = world_svg(WORLD).unwrap();
            for name in ["Russia", "Fiji", "Antarctica"] {
                let tag = format!("data-name=\"{name}\" d=\"");
                let d = svg.split(&tag).nth(1).unwrap().split('"').next().unwrap();
                // Redo the path as absolute points and look for a segment spanning half the map.
                let mut prev: Option<(f64, f64)> = None;
                for sub in d.split('M').filter(|s| !s.is_empty()) {
                    let pts = path_points(&format!("M{sub}"));
                    for p in &pts {
                        if let Some(q) = prev {
                            assert!(
                                (p.0 - q.0).abs() < MAP_WIDTH / 2.0,
                                "{name}: {q:?} -> {p:?}"
                            );
                        }
                        prev = Some(*p);
                    }
                    prev = None;
                }
            }
        }

        #[test]
        fn bad_topojson_is_an_error() {
            for bad in [
                "",
                "{}",
                "not json",
                "[]",
                r#"{"arcs": []}"#,
                r#"{"arcs": [[[0,0],[1,1]]], "objects": {"countries": {"geometries": [{"type": "Polygon", "arcs": [[5]]}]}}}"#,
                r#"{"arcs": [[[0,0],[1,1]]], "objects": {"countries": {"geometries": [{"type": "Polygon", "arcs": [[-9223372036854775808]]}]}}}"#,
                r#"{"arcs": [[[0,0],[1,1]]], "objects": {"countries": {"geometries": [{"type": "Polygon", "arcs": [[0.5]]}]}}}"#,
                r#"{"arcs": [[[0,"x"]]], "objects": {"countries": {"geometries": []}}}"#,
                r#"{"transform": {"scale": [1]}, "arcs": [], "objects": {"countries": {"geometries": []}}}"#,
                r#"{"arcs": [[[0,0],[1,1]]], "objects": {"countries": {"geometries": [{"type": "MultiPolygon", "arcs": [0]}]}}}"#,
            ] {
                let e = world_svg(bad).expect_err(bad);
                assert!(e.starts_with("world map: "), "{e}");
            }
            let e = world_svg(r#"{"arcs": [], "objects": {"countries": {"geometries": [{"type": "Polygon", "arcs": [[3]], "properties": {"name": "X"}}]}}}"#).unwrap_err();
            assert!(
                e.contains("arc index 3 out of range") && e.contains("(X)"),
                "{e}"
            );
        }

        #[test]
        fn odd_but_valid_topojson_is_drawn() {
            // Null geometries are skipped; names are escaped; huge coordinates are clamped.
            let topo = r#"{"transform": {"scale": [1, 1], "translate": [0, 0]},
                "arcs": [[[0,0],[10,0],[0,10],[-10,0],[0,-10]], [[0,0],[1e300,1e300]]],
                "objects": {"countries": {"geometries": [
                    {"type": null},
                    {"type": "Polygon"},
                    {"type": "Polygon", "arcs": [[0]], "properties": {"name": "A&B <\"C\">"}},
                    {"type": "MultiPolygon", "arcs": [[[-1]], [[1, -2]]], "id": "7"}
                ]}}}"#;
            let svg = world_svg(topo).unwrap();
            assert!(
                svg.contains("data-name=\"A&amp;B &lt;&quot;C&quot;&gt;\""),
                "{svg}"
            );
            assert!(svg.contains("data-name=\"7\""), "{svg}");
            assert_eq!(svg.matches("<path data-name=").count(), 2);
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
    }
}
