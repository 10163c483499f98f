//! Layer 6: pictures. SVG circuit drawings, attention patterns and plots, written by hand (no
//! graphviz, no external program). DOT export lives with the circuit (`graph::dot`).

pub mod attention;
pub mod circuit_svg;
pub mod cud_plots;
pub mod cure_svg;
pub mod export;
pub mod plot_svg;
pub mod svg;
pub mod view;

pub use circuit_svg::{circuit_svg, write_circuit_svg, CircuitSvgOptions, InactiveNodes};
pub use export::{write_picture, PictureFormat};
pub use plot_svg::{BarChart, LinePlot, Scale, Series};
