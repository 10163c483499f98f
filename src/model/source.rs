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
            let (n, meta) = safetensors::SafeTensors::read_metadata(&map)
                .map_err(|e| Error::format(path, format!("invalid safetensors header: {e}")))?;
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

/// A GGUF file (v1 to v3): metadata plus tensors, quantised ones dequantised on read.
pub struct GgufSource {
    pub path: PathBuf,
    map: Mmap,
    pub content: gguf_file::Content,
}

impl GgufSource {
    pub fn open(path: &Path) -> Result<Self> {
        let map = map_file(path)?;
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(&map[..]))
            .map_err(|e| Error::format(path, format!("not a valid GGUF file: {e}")))?;
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
