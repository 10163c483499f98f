//! Progress bars shared by the subcommands: indicatif behind the library's `Progress` trait.

use circuitscope::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// An indicatif bar that the library reports to (and that derefs to the bar itself).
pub struct Bar(ProgressBar);

impl std::ops::Deref for Bar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Progress for Bar {
    fn update(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

/// A bar with a position/length, elapsed time, ETA and a free message (e.g. the loss).
pub fn bar(len: u64, what: &str) -> Bar {
    let pb = ProgressBar::new(len);
    let template = format!("{what:<12} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}");
    pb.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    Bar(pb)
}
