//! The learning-rate schedule: linear warm-up, then cosine decay to a floor.

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
    /// The final learning rate as a fraction of the peak.
    pub floor: f64,
}

impl Schedule {
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = (self.total.saturating_sub(self.warmup)).max(1) as f64;
        let t = ((step - self.warmup) as f64 / span).min(1.0);
        let min = self.peak * self.floor;
        min + (self.peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_the_floor() {
        let s = Schedule { peak: 1.0, warmup: 10, total: 110, floor: 0.1 };
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        assert!((s.at(60) - 0.55).abs() < 1e-12);
        assert!((s.at(110) - 0.1).abs() < 1e-12);
        assert!((1..200).all(|i| s.at(i + 10) <= s.at(i + 9) + 1e-15));
    }
}
