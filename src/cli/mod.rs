//! The subcommands that need more than a few lines, one module each.

pub mod attribute;
pub mod circuit;
mod common;
pub mod compare;
pub mod demo;
pub mod evaluate;
pub mod progress;
pub mod render;
pub mod train;
