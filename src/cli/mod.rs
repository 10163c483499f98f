//! The subcommands that need more than a few lines, one module each.

pub mod demo;
pub mod progress;
pub mod train;
