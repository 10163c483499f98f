//! Layer 5: analyses built on hooks, the model and attribution (head roles; later CUD, concept
//! vectors and CURE).

pub mod compare;
pub mod heads;
pub mod stats;
