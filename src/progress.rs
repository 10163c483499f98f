//! Progress of long work (loading, attribution, faithfulness), reported to whoever shows it: the
//! binary draws indicatif bars, a program passes a closure `Fn(done, total)` or [`NoProgress`].

/// Progress of a long computation, in units of work (tensors loaded, forward passes) done out of
/// a total.
pub trait Progress {
    fn update(&self, done: u64, total: u64);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: u64, _: u64) {}
}

impl<F: Fn(u64, u64)> Progress for F {
    fn update(&self, done: u64, total: u64) {
        self(done, total)
    }
}
