//! `circuitscope._native`: the library's models, hooks, attribution, circuits and unlearning
//! analyses for Python. The package `circuitscope` (python/circuitscope/) wraps it: arrays cross
//! as little-endian bytes with a shape and become numpy arrays there; structured results cross as
//! JSON and become dicts. Every library error becomes `circuitscope.CircuitscopeError` with the
//! library's message.

mod analyses;
mod arrays;
mod circuits;
mod model;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _native,
    CircuitscopeError,
    PyException,
    "An error of circuitscope: the file, tensor, field or hook point at fault and what was expected."
);

/// The library's error as a Python exception with its message (and its causes').
pub fn err(e: impl Into<anyhow::Error>) -> PyErr {
    let e: anyhow::Error = e.into();
    // the library's messages already quote their causes; add a cause only where one does not
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    CircuitscopeError::new_err(msg)
}

/// A library result as a Python one.
pub trait OrPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrPy<T> for Result<T, E> {
    fn py(self) -> PyResult<T> {
        self.map_err(err)
    }
}

/// A serialisable result as JSON text, which the package reads into dicts and lists.
pub fn to_json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).py()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CircuitscopeError", m.py().get_type::<CircuitscopeError>())?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<circuits::PyCircuit>()?;
    m.add_function(wrap_pyfunction!(circuits::attribute, m)?)?;
    m.add_function(wrap_pyfunction!(circuits::faithfulness, m)?)?;
    m.add_function(wrap_pyfunction!(circuits::faithfulness_curve, m)?)?;
    m.add_function(wrap_pyfunction!(circuits::compare, m)?)?;
    m.add_function(wrap_pyfunction!(circuits::line_plot_svg, m)?)?;
    m.add_function(wrap_pyfunction!(circuits::save_picture, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::unlearn, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::answer_scores, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::evaluate_unlearning, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::anchor_run, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::anchor_consensus_sets, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::cud_circuits, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::cud_distances, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::concept_find, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::concept_validate, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::concept_audit, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::cure_partition, m)?)?;
    Ok(())
}
