//! The Python package and the notebooks, run by the README's test command: the package is built
//! from this checkout (`scripts/python-env.sh`: the extension module by cargo, numpy and Jupyter's
//! runner from PyPI into target/python-env), `python/tests/test_package.py` checks the boundary
//! (arrays, gradients, bad input as exceptions), and every notebook of notebooks/ runs top to
//! bottom (`scripts/notebooks.py --check`): a cell error, a failed assertion in a cell, or outputs
//! other than the committed ones fail the test.

mod common;

use common::{skip, Missing};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The environment's python and the package's folder, made once for both tests; `None` after a
/// loud skip where it cannot be made (no python3, PyPI out of reach).
fn python() -> Option<(String, String)> {
    static ENV: OnceLock<Option<(String, String)>> = OnceLock::new();
    ENV.get_or_init(make_env).clone()
}

fn make_env() -> Option<(String, String)> {
    let out = Command::new("bash").arg("scripts/python-env.sh").current_dir(root()).output().expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            skip(Missing::Fetch(&format!("the Python environment: {}", stderr.trim())));
            return None;
        }
        _ => panic!("scripts/python-env.sh failed:\n{stderr}"),
    }
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some((python, root().join("target/python").display().to_string()))
}

fn run(python: &str, path: &str, args: &[&str]) {
    let out =
        Command::new(python).args(args).env("PYTHONPATH", path).current_dir(root()).output().expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} failed:\n{stdout}\n{stderr}", args.join(" "));
    eprintln!("{stdout}{stderr}");
}

#[test]
fn the_package_returns_arrays_and_gradients_and_raises_on_bad_input() {
    let Some((python, path)) = python() else { return };
    run(&python, &path, &["python/tests/test_package.py"]);
}

#[test]
fn every_notebook_runs_top_to_bottom_with_its_committed_outputs() {
    let Some((python, path)) = python() else { return };
    run(&python, &path, &["scripts/notebooks.py", "--check"]);
}
