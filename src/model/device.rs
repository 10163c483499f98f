//! Where a model runs: the CPU (always) or an NVIDIA GPU through candle's CUDA backend, when
//! circuitscope was built with the `cuda` feature (`scripts/build-cuda.sh`).

use crate::error::{Error, Result};
use candle_core::Device;

/// Reads `cpu`, `cuda` (the first GPU) or `cuda:N`.
pub fn parse(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("cpu") {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.to_ascii_lowercase().strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Error::input(format!("device `{spec}`: expected cpu, cuda or cuda:N with N a GPU index")))?,
        None => return Err(Error::input(format!("device `{spec}`: expected cpu, cuda or cuda:N"))),
    };
    cuda(ordinal, spec)
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize, spec: &str) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| Error::input(format!("device `{spec}`: no usable CUDA GPU {ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize, spec: &str) -> Result<Device> {
    Err(Error::input(format!(
        "device `{spec}`: this circuitscope was built without CUDA; build it with scripts/build-cuda.sh \
         (cargo build --release --features cuda, with nvcc from PyPI)"
    )))
}

/// `cpu` or `cuda:N`, for reports and meta files.
pub fn name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Whether circuitscope was built with CUDA support.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_refuses_malformed_specs_by_name() {
        assert!(parse("cpu").unwrap().is_cpu());
        assert!(parse(" CPU ").unwrap().is_cpu());
        for bad in ["gpu", "cuda:", "cuda:x", "cuda1", "cuda:-1"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{}`", bad.trim())), "{bad}: {err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cpu_build_says_how_to_get_cuda() {
        let err = parse("cuda:0").unwrap_err().to_string();
        assert!(err.contains("built without CUDA") && err.contains("scripts/build-cuda.sh"), "{err}");
    }
}
