//! Arrays across the boundary: a float32 tensor as (little-endian bytes, shape), which the
//! package turns into a numpy array without a copy per element, and back.

use crate::{err, OrPy};
use candle_core::{DType, Device, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// (bytes, shape) of a float32 array.
pub type Array<'py> = (Bound<'py, PyBytes>, Vec<usize>);

pub fn to_array<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Array<'py>> {
    let shape = t.dims().to_vec();
    let v: Vec<f32> = t.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).py()?;
    Ok((PyBytes::new(py, &floats_to_bytes(&v)), shape))
}

pub fn vec_array<'py>(py: Python<'py>, v: &[f32], shape: Vec<usize>) -> Array<'py> {
    (PyBytes::new(py, &floats_to_bytes(v)), shape)
}

fn floats_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A float32 array from Python (the package has made it contiguous float32) as a tensor;
/// `what` names it in the error.
pub fn from_array(bytes: &[u8], shape: &[usize], device: &Device, what: &str) -> PyResult<Tensor> {
    let n: usize = shape.iter().product();
    if bytes.len() != 4 * n {
        return Err(err(anyhow::anyhow!(
            "{what}: {} bytes do not make a float32 array of shape {shape:?} ({n} values)",
            bytes.len()
        )));
    }
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Tensor::from_vec(v, shape, device).py()
}
