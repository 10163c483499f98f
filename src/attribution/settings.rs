//! The rules that tie a data file's kind to the metrics and interventions it can take, and the
//! checks of an [`AttributionConfig`]: what a program or notebook gets without the command line.

use super::{AblationKind, AttributionConfig, Method, Metric};
use crate::data::DataKind;
use crate::error::{Error, Result};

/// The metric and intervention a data file is evaluated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSettings {
    pub metric: Metric,
    pub intervention: AblationKind,
}

impl DataSettings {
    /// Task files: logit difference with patching; question/answer data: the answer's NLL with
    /// zero ablation.
    pub fn defaults(kind: DataKind) -> Self {
        match kind {
            DataKind::Task => DataSettings { metric: Metric::LogitDiff, intervention: AblationKind::Patching },
            DataKind::Qa => DataSettings { metric: Metric::Nll, intervention: AblationKind::Zero },
        }
    }

    /// The given metric and intervention (the kind's defaults for those not given), refused where
    /// the data cannot carry them: question/answer data has no corrupted prompts to patch from
    /// and no distractor to compare against.
    pub fn for_data(kind: DataKind, metric: Option<Metric>, intervention: Option<AblationKind>) -> Result<Self> {
        let d = DataSettings::defaults(kind);
        let s =
            DataSettings { metric: metric.unwrap_or(d.metric), intervention: intervention.unwrap_or(d.intervention) };
        if kind == DataKind::Qa {
            if s.intervention == AblationKind::Patching {
                return Err(Error::input(
                    "question/answer data has no corrupted prompts, so the patching intervention cannot apply; use \
                     zero, mean or mean-positions",
                ));
            }
            if matches!(s.metric, Metric::LogitDiff | Metric::ProbDiff) {
                return Err(Error::input(format!(
                    "the {} metric needs answer/distractor pairs, and question/answer data has none; use nll, \
                     seq-prob or kl",
                    s.metric
                )));
            }
        }
        Ok(s)
    }
}

impl AttributionConfig {
    /// Every setting in range: at least one integration step, item per batch and row per pass;
    /// reader fixes only for the gradient methods. [`super::attribute`] checks this first.
    pub fn validate(&self) -> Result<()> {
        if let Method::EapIgInputs { steps: 0 } | Method::EapIgActivations { steps: 0 } = self.method {
            return Err(Error::input(format!("{}: the number of steps must be at least 1", self.method.name())));
        }
        if self.fix.any() && self.method == Method::Exact {
            return Err(Error::input("reader fixes are for the gradient methods; exact patching needs none"));
        }
        if self.max_rows == 0 {
            return Err(Error::input("max_rows must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::input("the batch size must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_kind_and_what_question_answer_data_refuses() {
        assert_eq!(DataSettings::for_data(DataKind::Task, None, None).unwrap().metric, Metric::LogitDiff);
        let qa = DataSettings::for_data(DataKind::Qa, None, None).unwrap();
        assert_eq!((qa.metric, qa.intervention), (Metric::Nll, AblationKind::Zero));
        let kl = DataSettings::for_data(DataKind::Qa, Some(Metric::Kl), Some(AblationKind::Mean)).unwrap();
        assert_eq!((kl.metric, kl.intervention), (Metric::Kl, AblationKind::Mean));
        let err = DataSettings::for_data(DataKind::Qa, None, Some(AblationKind::Patching)).unwrap_err().to_string();
        assert!(err.contains("corrupted prompts") && err.contains("zero"), "{err}");
        let err = DataSettings::for_data(DataKind::Qa, Some(Metric::ProbDiff), None).unwrap_err().to_string();
        assert!(err.contains("prob-diff") && err.contains("distractor"), "{err}");
    }

    #[test]
    fn configs_out_of_range_are_refused_by_name() {
        let ok = AttributionConfig::default();
        assert!(ok.validate().is_ok());
        let zero_steps = AttributionConfig { method: Method::EapIgActivations { steps: 0 }, ..ok.clone() };
        assert!(zero_steps.validate().unwrap_err().to_string().contains("steps"));
        assert!(AttributionConfig { batch_size: 0, ..ok.clone() }.validate().is_err());
        assert!(AttributionConfig { max_rows: 0, ..ok.clone() }.validate().is_err());
        let fixed_exact =
            AttributionConfig { method: Method::Exact, fix: super::super::ReaderFix { qk: true, mlp: false }, ..ok };
        assert!(fixed_exact.validate().unwrap_err().to_string().contains("exact"));
    }
}
