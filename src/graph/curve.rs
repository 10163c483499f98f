//! Summary areas of a faithfulness curve (ALGORITHMS.md §4), as MIB computes them
//! (`print_results.py` / `evaluate_area_under_curve` in the MIB circuit-track code):
//!
//! - x: the number of edges, normalised to [0, 1] by `x_max` (MIB: the share of all edges;
//!   its `area_under_curve` divides by the last x, i.e. the full graph at 100 %).
//! - The trapezoid rule over consecutive points, linear in normalised x, from the first
//!   point to the last (no area is added before the first point or after the last).
//! - CPR = ∫ f dx (higher is better), CMD = ∫ |1 − f| dx (lower is better).
//!
//! With MIB's points (0.1 %, 0.2 %, …, 100 % of the edges), x_max = the graph's edge count.

/// CPR and CMD of one curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurveAreas {
    /// Area under the faithfulness curve.
    pub cpr: f64,
    /// Area between the curve and 1.
    pub cmd: f64,
}

/// Areas of a curve given as (edge count, normalised faithfulness) points sorted by edge
/// count; `x_max` normalises the edge counts (usually the graph's total edge count).
/// Fewer than two points give zero areas. Panics if `x_max` is not positive or the points
/// are not sorted by x.
pub fn curve_areas(points: &[(f64, f64)], x_max: f64) -> CurveAreas {
    assert!(x_max > 0.0, "x_max must be positive");
    let mut areas = CurveAreas { cpr: 0.0, cmd: 0.0 };
    for pair in points.windows(2) {
        let ((x1, f1), (x2, f2)) = (pair[0], pair[1]);
        assert!(x2 >= x1, "faithfulness points must be sorted by edge count");
        let dx = (x2 - x1) / x_max;
        areas.cpr += dx * (f1 + f2) / 2.0;
        areas.cmd += dx * ((1.0 - f1).abs() + (1.0 - f2).abs()) / 2.0;
    }
    areas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoids_over_normalised_x() {
        // f = 1 everywhere on [0, 1]: CPR 1, CMD 0.
        let a = curve_areas(&[(0.0, 1.0), (50.0, 1.0), (100.0, 1.0)], 100.0);
        assert_eq!(a, CurveAreas { cpr: 1.0, cmd: 0.0 });
        // f rising linearly 0 → 1 over [0, 1]: CPR 0.5, CMD 0.5.
        let a = curve_areas(&[(0.0, 0.0), (10.0, 1.0)], 10.0);
        assert!((a.cpr - 0.5).abs() < 1e-12 && (a.cmd - 0.5).abs() < 1e-12);
        // Overshoot counts towards CMD: f = 2 on [0.5, 1].
        let a = curve_areas(&[(5.0, 2.0), (10.0, 2.0)], 10.0);
        assert!((a.cpr - 1.0).abs() < 1e-12 && (a.cmd - 0.5).abs() < 1e-12);
        assert_eq!(curve_areas(&[(3.0, 0.7)], 10.0), CurveAreas { cpr: 0.0, cmd: 0.0 });
    }
}
