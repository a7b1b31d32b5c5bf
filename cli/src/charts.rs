//! The report's charts, drawn by plotters into SVG text that the HTML inlines: line charts (a
//! quantity over time or over score bins, one line per group) and horizontal stacked bars (counts per
//! route, factor, identity, one colour per part). Plotters escapes the text it writes.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Width of every chart, pixels (the page is 1000 px wide; charts scale down when printed).
const WIDTH: u32 = 960;
/// Longest category label on a bar chart, characters.
const MAX_LABEL: usize = 42;

/// One line of a line chart.
pub struct Line {
    /// Legend entry.
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One part of stacked bars: its legend entry and a value per category.
pub struct Part {
    /// Legend entry.
    pub name: String,
    /// One value per category, in category order.
    pub values: Vec<f64>,
}

fn fail(e: impl std::fmt::Display) -> String {
    format!("cannot draw a chart: {e}")
}

fn colour(i: usize) -> RGBColor {
    // Colour-blind-safe (Okabe-Ito), then plotters' palette.
    const OKABE_ITO: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(120, 120, 120),
    ];
    match OKABE_ITO.get(i) {
        Some(c) => *c,
        None => {
            let (r, g, b) = Palette99::pick(i).rgb();
            RGBColor(r, g, b)
        }
    }
}

/// Draws the legend of `chart` at `at`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(fail)
}

fn label(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_LABEL - 1).collect();
    out.push('…');
    out
}

/// A line chart over `x` (its range), one line per entry of `lines`; `x_desc`/`y_desc` name the axes.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x: (f64, f64),
    lines: &[Line],
) -> Result<String, String> {
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1.max(x.0 + 1e-9), 0f64..y_max)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(fail)?;
        for (i, l) in lines.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))
                .map_err(fail)?
                .label(label(&l.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        if !lines.is_empty() {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// Horizontal stacked bars: one bar per category (the first on top), one colour per part.
pub fn bars(
    title: &str,
    x_desc: &str,
    categories: &[String],
    parts: &[Part],
) -> Result<String, String> {
    let n = categories.len().max(1);
    let total = |i: usize| -> f64 { parts.iter().filter_map(|p| p.values.get(i)).sum() };
    let x_max = (0..n).map(total).fold(0f64, f64::max).max(1e-9) * 1.08;
    // Index 0 is drawn at the bottom: category i goes to row n - 1 - i.
    let row = |i: usize| n - 1 - i;
    let names: Vec<String> = categories.iter().map(|c| label(c)).collect();
    let height = 110 + 26 * n as u32 + if parts.len() > 1 { 30 } else { 0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(280)
            .build_cartesian_2d(0f64..x_max, (0..n).into_segmented())
            .map_err(fail)?;
        let formatter = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(r) if *r < n => {
                names.get(n - 1 - r).cloned().unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&formatter)
            .x_desc(x_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(fail)?;
        let mut start = vec![0f64; n];
        for (k, part) in parts.iter().enumerate() {
            let c = colour(k);
            let bars: Vec<Rectangle<(f64, SegmentValue<usize>)>> = (0..n)
                .filter_map(|i| {
                    let v = *part.values.get(i)?;
                    let x0 = *start.get(i)?;
                    if let Some(s) = start.get_mut(i) {
                        *s += v;
                    }
                    let mut r = Rectangle::new(
                        [
                            (x0, SegmentValue::Exact(row(i))),
                            (x0 + v, SegmentValue::Exact(row(i) + 1)),
                        ],
                        c.filled(),
                    );
                    r.set_margin(4, 4, 0, 0);
                    Some(r)
                })
                .collect();
            let series = chart.draw_series(bars).map_err(fail)?;
            if parts.len() > 1 {
                series.label(label(&part.name)).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                });
            }
        }
        if parts.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let svg = bars(
            "t",
            "requests",
            &["<script>".into(), "b".into()],
            &[Part {
                name: "x".into(),
                values: vec![3.0, 1.0],
            }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        let svg = lines(
            "t",
            "x",
            "y",
            (0.0, 2.0),
            &[Line {
                name: "allow".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
            }],
        )
        .unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(svg.contains("allow"));
    }

    /// One bar still has room for its margins (Chromium logs an error for a negative height).
    #[test]
    fn a_single_bar_has_a_positive_height() {
        for parts in [1, 3] {
            let parts: Vec<Part> = (0..parts)
                .map(|i| Part {
                    name: format!("p{i}"),
                    values: vec![2.0],
                })
                .collect();
            let svg = bars("t", "x", &["only".into()], &parts).unwrap();
            assert!(!svg.contains("height=\"-"), "{svg}");
        }
    }
}
