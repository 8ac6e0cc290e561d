//! Line charts as SVG text, for the figures BENCHMARKS.md shows (figures/): no plotting
//! library, the same bytes for the same numbers.

use std::fmt::Write;

pub struct Series {
    pub label: String,
    pub colour: &'static str,
    /// (x, y) points; a None y is a gap (nothing restored).
    pub points: Vec<(f64, Option<f64>)>,
    pub dashed: bool,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Log scale on x (traffic).
    pub x_log: bool,
    pub x_ticks: Vec<f64>,
    pub y_max: f64,
    pub y_step: f64,
    /// Horizontal lines: (y, label).
    pub marks: Vec<(f64, String)>,
    pub series: Vec<Series>,
}

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 310.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

impl Chart {
    pub fn svg(&self) -> String {
        let (x_min, x_max) = (self.x_ticks[0], self.x_ticks[self.x_ticks.len() - 1]);
        let fx = |x: f64| {
            let t = if self.x_log {
                (x.ln() - x_min.ln()) / (x_max.ln() - x_min.ln())
            } else {
                (x - x_min) / (x_max - x_min)
            };
            LEFT + t * (W - LEFT - RIGHT)
        };
        let fy = |y: f64| TOP + (1.0 - y.min(self.y_max) / self.y_max) * (H - TOP - BOTTOM);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
            esc(&self.title)
        );
        let mut y = 0.0;
        while y <= self.y_max + 1e-9 {
            let py = fy(y);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{y}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                py + 4.0
            );
            y += self.y_step;
        }
        for &x in &self.x_ticks {
            let px = fx(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{x}</text>"##,
                H - BOTTOM,
                H - BOTTOM + 16.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            H - 12.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + (H - TOP - BOTTOM) / 2.0,
            esc(&self.y_label)
        );
        for (y, label) in &self.marks {
            let py = fy(*y);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#c00" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" fill="#c00">{}</text>"##,
                W - RIGHT,
                W - RIGHT + 6.0,
                py + 4.0,
                esc(label)
            );
        }
        for (i, series) in self.series.iter().enumerate() {
            let dash = if series.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            // A run of points with values is one polyline; a gap breaks it.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &(x, y) in &series.points {
                match (y, runs.last_mut()) {
                    (Some(y), Some(run)) => run.push((fx(x), fy(y))),
                    _ => runs.push(Vec::new()),
                }
            }
            for run in runs.iter().filter(|r| !r.is_empty()) {
                let points: Vec<String> =
                    run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                    points.join(" "),
                    series.colour
                );
                // Dots mark a few points; a curve of hundreds is a line.
                for (x, y) in run.iter().filter(|_| run.len() <= 20) {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                        series.colour
                    );
                }
            }
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let lx = W - RIGHT + 10.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 24.0,
                series.colour,
                lx + 30.0,
                ly + 4.0,
                esc(&series.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
