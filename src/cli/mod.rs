//! The subcommands that need more than a few lines, one module each.

pub mod progress;
pub mod train;
