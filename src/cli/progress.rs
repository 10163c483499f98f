//! Progress bars shared by the subcommands.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a position/length, elapsed time, ETA and a free message (e.g. the loss).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let template = format!("{what:<12} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}");
    pb.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    pb
}
