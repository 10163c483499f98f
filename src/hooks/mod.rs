//! Layer 1: the vocabulary of intervention. Hook points, capture caches, interventions and
//! gradient taps; nothing here knows about any model.

pub mod cache;
pub mod point;
pub mod run;
pub mod set;

pub use cache::{ActivationCache, MeanOver};
pub use point::{HookPoint, PointSet, Site};
pub use run::{HookRun, TapGradients, Taps};
pub use set::{Capture, DynamicEdit, Edit, EditFn, HookSet, Intervention};
