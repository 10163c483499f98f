//! Methods and ablations by name, as the command line and result files spell them.

use super::{Ablation, Method};
use crate::error::{Error, Result};

impl Method {
    /// Every method, the integrated-gradient ones with m = `steps`: the one list that parsing,
    /// help and errors read ([`Method::name`] spells each).
    pub fn all(steps: usize) -> [Method; 5] {
        [
            Method::Eap,
            Method::EapIgInputs { steps },
            Method::EapIgActivations { steps },
            Method::CleanCorrupted,
            Method::Exact,
        ]
    }

    /// Every method's name.
    pub fn names() -> Vec<&'static str> {
        Method::all(1).iter().map(Method::name).collect()
    }

    /// The method called `name`; `steps` is m for the integrated-gradient methods (ignored by the
    /// others).
    pub fn from_name(name: &str, steps: usize) -> Result<Method> {
        Method::all(steps).into_iter().find(|m| m.name() == name).ok_or_else(|| {
            Error::input(format!("unknown attribution method `{name}` (known: {})", Method::names().join(", ")))
        })
    }

    /// m for the integrated-gradient methods, else `None`.
    pub fn steps(&self) -> Option<usize> {
        match self {
            Method::EapIgInputs { steps } | Method::EapIgActivations { steps } => Some(*steps),
            _ => None,
        }
    }
}

/// The ablations a data file can choose by name; `mean` and `mean-positions` take their means
/// over a reference set given separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AblationKind {
    Patching,
    Zero,
    Mean,
    MeanPositions,
}

impl AblationKind {
    pub const ALL: [AblationKind; 4] =
        [AblationKind::Patching, AblationKind::Zero, AblationKind::Mean, AblationKind::MeanPositions];

    pub fn name(self) -> &'static str {
        match self {
            AblationKind::Patching => "patching",
            AblationKind::Zero => "zero",
            AblationKind::Mean => "mean",
            AblationKind::MeanPositions => "mean-positions",
        }
    }

    pub fn from_name(name: &str) -> Result<AblationKind> {
        AblationKind::ALL
            .into_iter()
            .find(|k| k.name() == name || (name == "mean-positional" && k.name() == "mean-positions"))
            .ok_or_else(|| {
                let names: Vec<&str> = AblationKind::ALL.iter().map(|k| k.name()).collect();
                Error::input(format!("unknown intervention `{name}` (known: {})", names.join(", ")))
            })
    }

    /// The ablation; `reference` (token sequences to average writer outputs over) is used by the
    /// mean ablations only.
    pub fn ablation(self, reference: impl FnOnce() -> Vec<Vec<u32>>) -> Ablation {
        match self {
            AblationKind::Patching => Ablation::Patching,
            AblationKind::Zero => Ablation::Zero,
            AblationKind::Mean => Ablation::Mean { reference: reference(), per_position: false },
            AblationKind::MeanPositions => Ablation::Mean { reference: reference(), per_position: true },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Method::names() {
            assert_eq!(Method::from_name(name, 3).unwrap().name(), name);
        }
        assert_eq!(Method::from_name("eap-ig-inputs", 7).unwrap().steps(), Some(7));
        let err = Method::from_name("eap-ig", 5).unwrap_err().to_string();
        assert!(err.contains("eap-ig") && err.contains("eap-ig-activations"), "{err}");
        for k in AblationKind::ALL {
            assert_eq!(AblationKind::from_name(k.name()).unwrap(), k);
        }
        assert_eq!(AblationKind::from_name("mean-positional").unwrap(), AblationKind::MeanPositions);
        assert!(AblationKind::from_name("resample").unwrap_err().to_string().contains("zero"));
        let a = AblationKind::MeanPositions.ablation(|| vec![vec![1, 2]]);
        assert_eq!(a, Ablation::Mean { reference: vec![vec![1, 2]], per_position: true });
    }
}
