//! Layer 6: pictures. SVG circuit drawings and attention patterns written by hand (their layout
//! is ours), charts drawn by plotters, each exported as SVG, PDF or PNG with no external
//! program. DOT export lives with the circuit (`graph::dot`).

pub mod attention;
pub mod charts;
pub mod circuit_svg;
pub mod cud_plots;
pub mod cure_svg;
pub mod export;
pub mod svg;
pub mod view;

pub use charts::{BarChart, LinePlot, Scale, Series};
pub use circuit_svg::{circuit_svg, write_circuit_svg, CircuitSvgOptions, InactiveNodes, NodeFills};
pub use export::{write_picture, PictureFormat};
