//! Layer 6: pictures. SVG circuit drawings, attention patterns and plots, written by hand (no
//! graphviz, no external program). DOT export lives with the circuit (`graph::dot`).

pub mod attention;
pub mod circuit_svg;
pub mod cud_plots;
pub mod cure_svg;
pub mod plot_svg;
pub mod svg;

pub use circuit_svg::{circuit_svg, write_circuit_svg, CircuitSvgOptions, InactiveNodes};
pub use plot_svg::{BarChart, LinePlot, Scale, Series};
