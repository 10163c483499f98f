//! Layer 6: pictures. SVG circuit drawings, DOT export and SVG plots, written by hand (no
//! graphviz, no external program).

pub mod attention;
