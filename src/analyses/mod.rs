//! Layer 5: analyses built on hooks, the model and attribution: score agreement, statistics, head
//! roles, CUD (per-sample and anchor circuits, their vectors and the score), concept vectors;
//! later CURE.

pub mod compare;
pub mod concepts;
pub mod cud;
pub mod cud_validation;
pub mod cure;
pub mod heads;
pub mod mrd;
pub mod stats;
