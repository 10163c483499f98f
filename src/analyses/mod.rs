//! Layer 5: analyses built on hooks, the model and attribution: score agreement, statistics, head
//! roles, CUD (per-sample and anchor circuits, their vectors and the score); later concept
//! vectors and CURE.

pub mod compare;
pub mod cud;
pub mod cud_validation;
pub mod heads;
pub mod mrd;
pub mod stats;
