//! `curves.svg`: the training loss with its terms, and STS-B dev from the start model on.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordu64;
use plotters::prelude::*;

/// One logged step's loss and its terms, as the curves plot them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPoint {
    /// Steps completed.
    pub step: u64,
    /// L.
    pub total: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (absent for `infonce`).
    pub twins: Option<f64>,
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A named, coloured line: (label, colour, (step, value) points).
type Series = (&'static str, RGBColor, Vec<(u64, f64)>);

/// The finite range of `v`, padded by 5% (at least `min_pad`); (0, 1) when nothing is finite.
fn range(v: impl Iterator<Item = f64> + Clone, min_pad: f64) -> (f64, f64) {
    let lo = v.clone().filter(|x| x.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = v.filter(|x| x.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(min_pad);
    (lo - pad, hi + pad)
}

/// The loss series: (label, colour, points). The Twins term only where the run has one.
fn loss_series(losses: &[LossPoint]) -> Vec<Series> {
    let mut series = vec![
        ("total L", RGBColor(30, 80, 200), losses.iter().map(|p| (p.step, p.total)).collect()),
        ("InfoNCE", RGBColor(40, 150, 60), losses.iter().map(|p| (p.step, p.nce)).collect::<Vec<_>>()),
    ];
    let twins: Vec<(u64, f64)> = losses.iter().filter_map(|p| p.twins.map(|t| (p.step, t))).collect();
    if !twins.is_empty() {
        series.push(("Twins", RGBColor(220, 120, 20), twins));
    }
    series
}

/// Draws the two panels into `path`: the loss, its InfoNCE and Twins terms (on a log scale
/// when they span more than two decades), and STS-B dev with the start model's score at step
/// 0 and the change to the best in the title.
pub(crate) fn draw(path: &Path, losses: &[LossPoint], evals: &[(u64, f64)]) -> DrawResult {
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let max_step = losses.iter().map(|p| p.step).chain(evals.iter().map(|e| e.0)).max().unwrap_or(1).max(1);
    draw_losses(&top, losses, max_step)?;
    draw_dev(&bottom, evals, max_step)?;
    root.present()?;
    Ok(())
}

/// Draws each series with its legend entry on `chart`, whatever its y axis.
fn plot_series<'a, Y>(chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordu64, Y>>, series: Vec<Series>) -> DrawResult
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    for (label, colour, points) in series {
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

fn draw_losses(area: &DrawingArea<SVGBackend<'_>, Shift>, losses: &[LossPoint], max_step: u64) -> DrawResult {
    let series = loss_series(losses);
    let values = || series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (lo, hi) = values().filter(|v| v.is_finite() && *v > 0.0).fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let log = lo.is_finite() && hi / lo > 100.0;
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(if log { "training loss and its terms (log scale)" } else { "training loss and its terms" }, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60);
    if log {
        let positive = series.into_iter().map(|(l, c, p)| (l, c, p.into_iter().filter(|p| p.1.is_finite() && p.1 > 0.0).collect())).collect();
        let mut chart = builder.build_cartesian_2d(0u64..max_step, (lo / 1.5..hi * 1.5).log_scale())?;
        plot_series(&mut chart, positive)
    } else {
        let (lo, hi) = range(values(), 1e-3);
        let mut chart = builder.build_cartesian_2d(0u64..max_step, lo..hi)?;
        plot_series(&mut chart, series)
    }
}

/// The dev panel's title: the start (step 0) and the best score, and the change between them.
fn dev_caption(evals: &[(u64, f64)]) -> String {
    let start = evals.iter().find(|e| e.0 == 0);
    let best = evals.iter().filter(|e| e.0 > 0).max_by(|a, b| a.1.total_cmp(&b.1));
    match (start, best) {
        (Some(s), Some(b)) => format!("STS-B dev x 100: {:.2} at step 0, best {:.2} at step {} ({:+.2})", s.1, b.1, b.0, b.1 - s.1),
        (Some(s), None) => format!("STS-B dev x 100: {:.2} at step 0", s.1),
        (None, Some(b)) => format!("STS-B dev x 100: best {:.2} at step {}", b.1, b.0),
        (None, None) => "STS-B dev x 100 (no evaluation)".to_string(),
    }
}

fn draw_dev(area: &DrawingArea<SVGBackend<'_>, Shift>, evals: &[(u64, f64)], max_step: u64) -> DrawResult {
    // At least ±0.25 around the scores, so that a change of a few hundredths does not fill
    // the panel as if it were a large one.
    let (lo, hi) = range(evals.iter().map(|(_, e)| *e), 0.25);
    let mut chart = ChartBuilder::on(area)
        .caption(dev_caption(evals), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..max_step, lo..hi)?;
    chart.configure_mesh().x_desc("step").y_desc("Spearman").draw()?;
    chart.draw_series(LineSeries::new(evals.iter().copied(), RED.stroke_width(2)))?;
    chart.draw_series(evals.iter().map(|&(s, e)| Circle::new((s, e), 4, RED.filled())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_the_start_point_and_every_term() {
        let dir = std::env::temp_dir().join(format!("iftcl-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.svg");
        let losses: Vec<LossPoint> =
            (1..=20).map(|s| LossPoint { step: s, total: 1.0 / s as f64, nce: 0.9 / s as f64, twins: Some(1e-4 / s as f64) }).collect();
        draw(&path, &losses, &[(0, 86.72), (10, 86.85), (20, 86.89)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["86.72 at step 0", "best 86.89 at step 20 (+0.17)", "InfoNCE", "Twins", "total L", "log scale"] {
            assert!(svg.contains(text), "curves.svg lacks {text:?}");
        }
        // The step-0 point is drawn: three circles for three evaluations.
        assert_eq!(svg.matches("<circle").count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
