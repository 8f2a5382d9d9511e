//! Charts as standalone SVG files: line charts with markers, heat-map matrices and timelines.
//! No dependencies and no external references: every file opens on its own in any browser, and
//! every chart has a title, labelled axes with units, and a legend where there is more than one
//! series. All text is XML-escaped.

use std::fmt::Write as _;

/// Colours that stay distinguishable in print and for the common colour-vision deficiencies
/// (Okabe–Ito, then a few more).
const PALETTE: [&str; 12] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#8C564B", "#7F7F7F",
    "#BCBD22", "#17BECF",
];

/// Text for SVG and HTML: control characters stripped (XML allows none), markup escaped.
pub fn escape(s: &str) -> String {
    crate::clean::xml(s)
}

/// A "nice" step for about `target` intervals over `span`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A number for an axis label: thousands separated, decimals only when the step needs them.
pub fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let s = format!("{:.*}", decimals, v);
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(a, b)| (a, Some(b)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A vertical line at `x` with a numbered disc (the number refers to a table beside the chart;
/// `label` is the full text, shown as the disc's tooltip). Discs at the same tick stack.
#[derive(Clone, Debug)]
pub struct Marker {
    pub x: f64,
    pub number: usize,
    pub label: String,
}

/// The numbered discs of `markers`, each with a dashed line from `top` down to `bottom`: stacked
/// down into the plot from `top` (`above` false) or up above it.
fn markers_svg(out: &mut String, markers: &[Marker], sx: impl Fn(f64) -> f64, top: f64, bottom: f64, above: bool) {
    let mut stacked: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for m in markers {
        let px = sx(m.x);
        let k = stacked.entry((px * 10.0) as i64).or_default();
        let cy = if above { top - 10.0 - *k as f64 * 17.0 } else { top + 9.0 + *k as f64 * 17.0 };
        *k += 1;
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{bottom:.1}" stroke="#B22222" stroke-dasharray="4 3" opacity="0.7"/>"##
        );
        let _ = writeln!(
            out,
            r##"<g class="marker"><title>{}</title><circle cx="{px:.1}" cy="{cy:.1}" r="8" fill="#B22222"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="white">{}</text></g>"##,
            escape(&m.label),
            cy + 3.2,
            m.number
        );
    }
}

pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;

fn header(out: &mut String, title: &str, width: f64, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<title>{t}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="{cx}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{t}</text>
"#,
        t = escape(title),
        cx = width / 2.0
    );
}

impl LineChart {
    pub fn svg(&self) -> String {
        let mut out = String::new();
        header(&mut out, &self.title, W, H);
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle">No data</text></svg>"#, W / 2.0, H / 2.0);
            return out;
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let ystep = nice_step(y1 - y0, 6.0);
        let y1 = (y1 / ystep).ceil() * ystep;
        let xstep = nice_step(x1 - x0, 8.0);
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        // Grid, ticks and labels.
        let mut y = (y0 / ystep).ceil() * ystep;
        while y <= y1 + ystep * 1e-9 {
            let py = sy(y);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e4e4e4"/>"##,
                LEFT + pw
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                py + 4.0,
                label(y, ystep)
            );
            y += ystep;
        }
        let mut x = (x0 / xstep).ceil() * xstep;
        while x <= x1 + xstep * 1e-9 {
            let px = sx(x);
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#999"/>"##,
                TOP + ph,
                TOP + ph + 5.0
            );
            let _ = writeln!(
                out,
                r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + ph + 18.0,
                label(x, xstep)
            );
            x += xstep;
        }
        let _ = writeln!(out, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 14.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            out,
            r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        // Markers: numbered discs, explained in a table beside the chart.
        let inside: Vec<Marker> = self.markers.iter().filter(|m| m.x >= x0 && m.x <= x1).cloned().collect();
        markers_svg(&mut out, &inside, sx, TOP, TOP + ph, false);
        // Series and legend.
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let path: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
                path.join(" ")
            );
            let ly = TOP + 8.0 + i as f64 * 18.0;
            let lx = W - RIGHT + 16.0;
            let _ = writeln!(
                out,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/>"#,
                lx + 22.0
            );
            let _ =
                writeln!(out, r#"<text x="{}" y="{}">{}</text>"#, lx + 28.0, ly + 4.0, escape(&shorten(&s.name, 22)));
        }
        out.push_str("</svg>\n");
        out
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).collect::<String>() + "…" }
}

/// A matrix of values (rows × columns) drawn as shaded cells with the numbers in them.
pub struct Matrix {
    pub title: String,
    pub row_label: String,
    pub col_label: String,
    pub unit: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub values: Vec<Vec<f64>>,
}

impl Matrix {
    pub fn svg(&self) -> String {
        let cell_w = 64.0;
        let cell_h = 24.0;
        let left = 110.0;
        let top = 90.0;
        let width = (left + cell_w * self.cols.len() as f64 + 40.0).max(420.0);
        let height = top + cell_h * self.rows.len() as f64 + 60.0;
        let mut out = String::new();
        header(&mut out, &self.title, width, height);
        let max = self.values.iter().flatten().copied().fold(0.0f64, f64::max);
        let _ = writeln!(
            out,
            r#"<text x="{}" y="46" text-anchor="middle">{} (columns); cells in {}</text>"#,
            width / 2.0,
            escape(&self.col_label),
            escape(&self.unit)
        );
        let _ = writeln!(out, r#"<text x="12" y="{}" >{} (rows)</text>"#, top - 8.0, escape(&self.row_label));
        for (j, c) in self.cols.iter().enumerate() {
            let x = left + cell_w * (j as f64 + 0.5);
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
                top - 8.0,
                escape(c)
            );
        }
        for (i, r) in self.rows.iter().enumerate() {
            let y = top + cell_h * i as f64;
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="bold">{}</text>"#,
                left - 8.0,
                y + 16.0,
                escape(r)
            );
            for (j, v) in self.values[i].iter().enumerate() {
                let x = left + cell_w * j as f64;
                let share = if max > 0.0 { v / max } else { 0.0 };
                let light = 97.0 - 55.0 * share;
                let _ = writeln!(
                    out,
                    r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w}" height="{cell_h}" fill="hsl(210,70%,{light:.0}%)" stroke="#fff"/>"##
                );
                if *v > 0.0 {
                    let colour = if share > 0.6 { "white" } else { "black" };
                    let _ = writeln!(
                        out,
                        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="{colour}">{}</text>"#,
                        x + cell_w / 2.0,
                        y + 16.0,
                        label(*v, 1.0)
                    );
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Bars on a tick axis: one row per item, from start to end (or to the end of the run).
pub struct Timeline {
    pub title: String,
    pub x_label: String,
    pub x_max: f64,
    pub rows: Vec<(String, f64, f64)>,
    pub markers: Vec<Marker>,
}

impl Timeline {
    pub fn svg(&self) -> String {
        let row_h = 22.0;
        // The label column is as wide as the longest label (about 6.6 px a character at 12 px),
        // so no row is cut; the plot keeps its own width beside it.
        let longest = self.rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
        let left = (longest as f64 * 6.6 + 24.0).clamp(160.0, 760.0);
        // Room above the rows for the markers' discs, stacked where they share a tick.
        let mut per_tick: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
        for m in &self.markers {
            *per_tick.entry(m.x as i64).or_default() += 1;
        }
        let top = 50.0 + 17.0 * per_tick.values().copied().max().unwrap_or(0) as f64;
        let pw = 620.0;
        let width = left + pw + 40.0;
        let height = top + row_h * self.rows.len().max(1) as f64 + 60.0;
        let mut out = String::new();
        header(&mut out, &self.title, width, height);
        let x_max = self.x_max.max(1.0);
        let sx = |x: f64| left + x / x_max * pw;
        let step = nice_step(x_max, 8.0);
        let axis_y = top + row_h * self.rows.len().max(1) as f64;
        let mut x = 0.0;
        while x <= x_max + 1e-9 {
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{top}" x2="{:.1}" y2="{axis_y}" stroke="#eee"/>"##,
                sx(x),
                sx(x)
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                sx(x),
                axis_y + 16.0,
                label(x, step)
            );
            x += step;
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            axis_y + 40.0,
            escape(&self.x_label)
        );
        if self.rows.is_empty() {
            let _ = writeln!(out, r#"<text x="{left}" y="{}">None in this run</text>"#, top + 15.0);
        }
        for (i, (name, start, end)) in self.rows.iter().enumerate() {
            let y = top + row_h * i as f64;
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + 15.0,
                escape(name)
            );
            let w = (sx(*end) - sx(*start)).max(2.0);
            let colour = PALETTE[i % PALETTE.len()];
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}" opacity="0.8"/>"#,
                sx(*start),
                y + 4.0,
                row_h - 8.0
            );
        }
        markers_svg(&mut out, &self.markers, sx, top, axis_y, true);
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_steps_are_readable() {
        assert_eq!(label(1234567.0, 1.0), "1,234,567");
        assert_eq!(label(-0.25, 0.05), "-0.25");
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(escape("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
    }

    #[test]
    fn a_chart_has_its_title_axes_and_legend() {
        let c = LineChart {
            title: "Price <co>".into(),
            x_label: "tick (week)".into(),
            y_label: "US$/kg".into(),
            series: vec![Series { name: "refined".into(), points: vec![(0.0, 1.0), (10.0, 3.0)] }],
            markers: vec![Marker { x: 5.0, number: 1, label: "ban".into() }],
        };
        let svg = c.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for needle in ["Price &lt;co&gt;", "tick (week)", "US$/kg", "refined", "<title>ban</title>", "polyline"] {
            assert!(svg.contains(needle), "{needle}");
        }
    }
}
