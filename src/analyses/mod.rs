//! Layer 5: analyses built on hooks, the model and attribution: score agreement, statistics, head
//! roles, CUD's circuit vectors and score (its pipeline is next); later concept vectors and CURE.

pub mod compare;
pub mod cud;
pub mod heads;
pub mod stats;
