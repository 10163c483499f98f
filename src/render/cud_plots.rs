//! CUD's pictures as charts: the distribution of scores, and the layer profile of groups of
//! circuits (mean edges per writer layer, e.g. the easiest against the hardest samples').

use super::charts::BarChart;

/// A histogram of scores in [0, 1] over ten bins of width 0.1 (1.0 falls in the last).
pub fn distribution(title: &str, scores: &[f64], x_label: &str) -> BarChart {
    let mut counts = vec![0.0; 10];
    for &s in scores.iter().filter(|s| s.is_finite()) {
        counts[((s * 10.0).floor().max(0.0) as usize).min(9)] += 1.0;
    }
    let mut chart = BarChart::new(title, x_label, "samples");
    chart.categories = (0..10).map(|i| format!("{:.1}–{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0)).collect();
    chart.series = vec![(format!("{} samples", scores.len()), counts)];
    chart
}

/// Mean edges per writer layer of each named group of circuits; each circuit is given as its
/// edges per layer (entry 0 the input, entry l + 1 layer l).
pub fn layer_profile(title: &str, groups: &[(String, Vec<Vec<usize>>)]) -> BarChart {
    let n = groups.iter().flat_map(|(_, g)| g.iter().map(Vec::len)).max().unwrap_or(1);
    let mut chart = BarChart::new(title, "writer layer", "mean edges per circuit");
    chart.categories = (0..n).map(|i| if i == 0 { "input".to_string() } else { format!("L{}", i - 1) }).collect();
    chart.series = groups
        .iter()
        .map(|(name, circuits)| {
            let mut mean = vec![0.0; n];
            for c in circuits {
                for (m, &e) in mean.iter_mut().zip(c) {
                    *m += e as f64 / circuits.len().max(1) as f64;
                }
            }
            (format!("{name} ({})", circuits.len()), mean)
        })
        .collect();
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_means() {
        let d = distribution("t", &[0.0, 0.05, 0.5, 1.0, f64::NAN], "CUD");
        assert_eq!(d.series[0].1, vec![2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let p = layer_profile("t", &[("a".into(), vec![vec![2, 0, 4], vec![0, 2, 0]])]);
        assert_eq!(p.categories, vec!["input", "L0", "L1"]);
        assert_eq!(p.series[0].1, vec![1.0, 1.0, 2.0]);
        crate::render::svg::check_well_formed(&p.to_svg().unwrap()).unwrap();
    }
}
