//! Writing results safely: to a temporary file beside the target, renamed into place, so an
//! interrupted run never leaves a half-written output.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuses to write into `dir` when it exists and holds anything, unless `force`: the one rule
/// every command that writes a folder follows.
pub fn check_output_dir(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let exists =
        |msg: &str| Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::AlreadyExists, msg.to_string())));
    if !dir.is_dir() {
        return exists("exists and is not a folder");
    }
    let non_empty = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.next().is_some();
    if non_empty && !force {
        return exists("the output folder exists and is not empty; overwriting it must be asked for (force)");
    }
    Ok(())
}

fn temp_sibling(dir: &Path, tag: &str) -> std::path::PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    dir.with_file_name(format!(".{name}.{tag}.{}", std::process::id()))
}

/// Builds a folder with `fill` in a temporary sibling, then swaps it in for `dir` (two renames):
/// an error or interruption leaves the previous `dir` as it was and no partial folder behind.
pub fn write_dir_atomic(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = temp_sibling(dir, "partial");
    let result = (|| {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        fill(&tmp)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = temp_sibling(dir, "old");
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(Error::io(dir, e));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
