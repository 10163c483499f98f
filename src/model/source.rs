//! Where weights come from: memory-mapped safetensors (single or sharded) and GGUF files.
//! Every tensor is converted (GGUF: dequantised) one at a time, and the mapped pages it came
//! from are released right after, so loading never holds the file and the weights twice.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use memmap2::{Mmap, UncheckedAdvice};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A named collection of tensors on disk.
pub trait TensorSource {
    /// The file that holds `name` (or the model's main file), for error messages.
    fn path_of(&self, name: &str) -> &Path;
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Reads `name` as an f32 tensor on the CPU.
    fn read_f32(&self, name: &str) -> Result<Tensor>;
    fn names(&self) -> Vec<String>;
    /// How `name` is stored on disk, e.g. "F32" or "Q4_1".
    fn stored_dtype(&self, name: &str) -> Option<String>;

    fn contains(&self, name: &str) -> bool {
        self.shape(name).is_some()
    }

    /// Reads `name`, checking its shape first, and converts it to `dtype`.
    fn load(&self, name: &str, expected: &[usize], dtype: DType) -> Result<Tensor> {
        let got = self
            .shape(name)
            .ok_or_else(|| Error::MissingTensor { path: self.path_of(name).to_path_buf(), name: name.to_string() })?;
        if got != expected {
            return Err(Error::TensorShape {
                path: self.path_of(name).to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                got,
            });
        }
        Ok(self.read_f32(name)?.to_dtype(dtype)?)
    }
}

pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the file is opened read-only; like every mmap-based loader we assume it is not
    // truncated while we read it.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// Tells the kernel the pages of `bytes` (inside `map`) will not be read again, so they leave
/// the resident set once a tensor has been copied out of them.
fn release(map: &Mmap, start: usize, len: usize) {
    let page = 4096;
    let begin = start.div_ceil(page) * page;
    let end = (start + len) / page * page;
    if end > begin {
        // SAFETY: the mapping is private and read-only; dropped pages are re-read from the file
        // if touched again, so no data can be lost.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, begin, end - begin) };
    }
}

struct Shard {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    tensors: HashMap<String, safetensors::tensor::TensorInfo>,
}

/// One `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
pub struct SafetensorsSource {
    shards: Vec<Shard>,
    index: HashMap<String, usize>,
}

impl SafetensorsSource {
    /// Opens `model.safetensors` or `model.safetensors.index.json` in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::format(&index, format!("not valid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::format(&index, "missing object `weight_map`"))?;
            let mut files: Vec<String> = map.values().filter_map(|f| f.as_str().map(String::from)).collect();
            files.sort();
            files.dedup();
            let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
            Self::open(&paths)
        } else if single.exists() {
            Self::open(&[single])
        } else {
            Err(Error::format(dir, "no model.safetensors or model.safetensors.index.json in this directory"))
        }
    }

    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for path in paths {
            let map = map_file(path)?;
            let (n, meta) = safetensors::SafeTensors::read_metadata(&map).map_err(|e| {
                Error::format(
                    path,
                    diagnose_safetensors(&map).unwrap_or_else(|| format!("invalid safetensors header: {e}")),
                )
            })?;
            let tensors: HashMap<String, safetensors::tensor::TensorInfo> =
                meta.tensors().into_iter().map(|(k, v)| (k, v.clone())).collect();
            for name in tensors.keys() {
                index.insert(name.clone(), shards.len());
            }
            shards.push(Shard { path: path.clone(), map, data_start: 8 + n, tensors });
        }
        Ok(SafetensorsSource { shards, index })
    }

    fn find(&self, name: &str) -> Option<(&Shard, &safetensors::tensor::TensorInfo)> {
        let shard = &self.shards[*self.index.get(name)?];
        Some((shard, shard.tensors.get(name)?))
    }
}

impl TensorSource for SafetensorsSource {
    fn stored_dtype(&self, name: &str) -> Option<String> {
        self.find(name).map(|(_, info)| format!("{:?}", info.dtype))
    }

    fn path_of(&self, name: &str) -> &Path {
        match self.index.get(name) {
            Some(i) => &self.shards[*i].path,
            None => &self.shards[0].path,
        }
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.find(name).map(|(_, info)| info.shape.clone())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.index.keys().cloned().collect();
        v.sort();
        v
    }

    fn read_f32(&self, name: &str) -> Result<Tensor> {
        use safetensors::Dtype as S;
        let (shard, info) = self
            .find(name)
            .ok_or_else(|| Error::MissingTensor { path: self.path_of(name).to_path_buf(), name: name.to_string() })?;
        let dtype = match info.dtype {
            S::F32 => DType::F32,
            S::F16 => DType::F16,
            S::BF16 => DType::BF16,
            S::F64 => DType::F64,
            other => {
                return Err(Error::format(
                    &shard.path,
                    format!("tensor `{name}` has dtype {other:?}; expected F32, F16, BF16 or F64"),
                ))
            }
        };
        let (start, end) = info.data_offsets;
        let bytes = &shard.map[shard.data_start + start..shard.data_start + end];
        let t = Tensor::from_raw_buffer(bytes, dtype, &info.shape, &Device::Cpu)
            .map_err(|e| Error::format(&shard.path, format!("tensor `{name}`: {e}")))?
            .to_dtype(DType::F32)?;
        release(&shard.map, shard.data_start + start, end - start);
        Ok(t)
    }
}

/// Says which tensor of a safetensors file that the `safetensors` crate rejected is at fault,
/// and how; `None` when the header itself is unreadable (the crate's message then stands).
fn diagnose_safetensors(bytes: &[u8]) -> Option<String> {
    let Some(prefix) = bytes.get(..8) else {
        return Some(format!("file is {} bytes, too short for the 8-byte header length (truncated?)", bytes.len()));
    };
    let n = u64::from_le_bytes(prefix.try_into().ok()?);
    let rest = bytes.len() as u64 - 8;
    if n > rest {
        return Some(format!("header length says {n} bytes but only {rest} follow (truncated?)"));
    }
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n as usize]).ok()?;
    let data_len = rest - n;
    // (name, begin, end, bytes the shape and dtype need)
    let mut tensors: Vec<(&str, u64, u64, Option<u64>)> = Vec::new();
    for (name, info) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let offsets = info.get("data_offsets")?.as_array()?;
        let (begin, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
        let elem_bits: u64 = match info.get("dtype")?.as_str()? {
            "F64" | "I64" | "U64" | "C64" => 64,
            "F32" | "I32" | "U32" => 32,
            "F16" | "BF16" | "I16" | "U16" => 16,
            "F4" | "F6_E2M3" | "F6_E3M2" => return None,
            _ => 8,
        };
        let elems = info.get("shape")?.as_array()?.iter().try_fold(1u64, |acc, d| acc.checked_mul(d.as_u64()?));
        tensors.push((name, begin, end, elems.and_then(|e| e.checked_mul(elem_bits)).map(|b| b / 8)));
    }
    tensors.sort_by_key(|t| (t.1, t.2));
    for &(name, begin, end, need) in &tensors {
        if end < begin {
            return Some(format!("tensor `{name}`: data_offsets [{begin}, {end}] end before they begin"));
        }
        if need != Some(end - begin) {
            let need = need.map_or("more than 2^64".to_string(), |b| b.to_string());
            let dims: Vec<u64> = header[name]["shape"].as_array()?.iter().filter_map(|d| d.as_u64()).collect();
            return Some(format!(
                "tensor `{name}`: shape {dims:?} needs {need} bytes but its data_offsets [{begin}, {end}] span {}",
                end - begin
            ));
        }
        if end > data_len {
            return Some(format!(
                "tensor `{name}`: data_offsets [{begin}, {end}] reach past the end of the data section, \
                 which has {data_len} bytes (file truncated?)"
            ));
        }
    }
    let mut next = 0;
    for &(name, begin, end, _) in &tensors {
        if begin != next {
            return Some(format!(
                "tensor `{name}`: data_offsets [{begin}, {end}] overlap or leave a gap; expected it to start at {next}"
            ));
        }
        next = end;
    }
    (next != data_len).then(|| format!("tensors cover {next} bytes but the data section has {data_len}"))
}

/// candle's GGUF reader divides by `general.alignment`, so a zero there would panic: look for
/// it first. Anything malformed on the way is left for candle's reader to report.
fn gguf_zero_alignment(bytes: &[u8]) -> bool {
    struct Reader<'a> {
        bytes: &'a [u8],
        pos: usize,
        /// v2+ length prefixes are u64, v1's are u32
        wide: bool,
    }
    impl<'a> Reader<'a> {
        fn take(&mut self, n: u64) -> Option<&'a [u8]> {
            let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
            let s = self.bytes.get(self.pos..end)?;
            self.pos = end;
            Some(s)
        }
        fn int(&mut self, size: u64) -> Option<u64> {
            Some(self.take(size)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        }
        fn len(&mut self) -> Option<u64> {
            self.int(if self.wide { 8 } else { 4 })
        }
        /// Skips a value of GGUF type `ty`; gives its value if it is an integer.
        fn value(&mut self, ty: u64, depth: usize) -> Option<Option<u64>> {
            let (size, integer) = match ty {
                0 | 1 => (1, true),
                2 | 3 => (2, true),
                4 | 5 => (4, true),
                10 | 11 => (8, true),
                6 => (4, false),
                7 => (1, false),
                12 => (8, false),
                8 => {
                    let n = self.len()?;
                    self.take(n)?;
                    return Some(None);
                }
                9 if depth < 4 => {
                    let (elem, n) = (self.int(4)?, self.len()?);
                    for _ in 0..n {
                        self.value(elem, depth + 1)?;
                    }
                    return Some(None);
                }
                _ => return None,
            };
            let v = self.int(size)?;
            Some(integer.then_some(v))
        }
    }
    let scan = || -> Option<bool> {
        let mut r = Reader { bytes, pos: 4, wide: false };
        r.wide = r.int(4)? >= 2;
        let (_tensors, kvs) = (r.len()?, r.len()?);
        for _ in 0..kvs {
            let key_len = r.len()?;
            let key = r.take(key_len)?;
            let ty = r.int(4)?;
            let value = r.value(ty, 0)?;
            if key == b"general.alignment" {
                return Some(value == Some(0));
            }
        }
        Some(false)
    };
    scan().unwrap_or(false)
}

/// A GGUF file (v1 to v3): metadata plus tensors, quantised ones dequantised on read.
pub struct GgufSource {
    pub path: PathBuf,
    map: Mmap,
    pub content: gguf_file::Content,
}

impl GgufSource {
    pub fn open(path: &Path) -> Result<Self> {
        let map = map_file(path)?;
        if gguf_zero_alignment(&map) {
            return Err(Error::config(path, "general.alignment", "must be a positive integer, got 0"));
        }
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(&map[..])).map_err(|e| match e {
            candle_core::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::format(path, "not a valid GGUF file: it ends inside its header (truncated?)")
            }
            e => Error::format(path, format!("not a valid GGUF file: {e}")),
        })?;
        Ok(GgufSource { path: path.to_path_buf(), map, content })
    }

    pub fn meta(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }

    pub fn version(&self) -> u32 {
        match self.content.magic {
            gguf_file::VersionedMagic::GgufV1 => 1,
            gguf_file::VersionedMagic::GgufV2 => 2,
            gguf_file::VersionedMagic::GgufV3 => 3,
        }
    }
}

impl TensorSource for GgufSource {
    fn stored_dtype(&self, name: &str) -> Option<String> {
        self.content.tensor_infos.get(name).map(|i| format!("{:?}", i.ggml_dtype))
    }

    fn path_of(&self, _name: &str) -> &Path {
        &self.path
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.content.tensor_infos.get(name).map(|i| i.shape.dims().to_vec())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.content.tensor_infos.keys().cloned().collect();
        v.sort();
        v
    }

    fn read_f32(&self, name: &str) -> Result<Tensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: name.to_string() })?;
        let q = info
            .read(&mut std::io::Cursor::new(&self.map[..]), self.content.tensor_data_offset, &Device::Cpu)
            .map_err(|e| Error::format(&self.path, format!("tensor `{name}`: {e}")))?;
        let t = q
            .dequantize(&Device::Cpu)
            .map_err(|e| Error::format(&self.path, format!("tensor `{name}`: cannot dequantise: {e}")))?;
        let dt = info.ggml_dtype;
        let len = info.shape.elem_count() / dt.block_size() * dt.type_size();
        release(&self.map, (self.content.tensor_data_offset + info.offset) as usize, len);
        Ok(t)
    }
}
