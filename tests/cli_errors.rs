//! The command line on bad input: every case must end with one `error: …` line that names the
//! file, field, tensor or hook point at fault and what was expected, a non-zero exit code, no
//! panic, and no half-written output. Plus two successful runs whose output shape we rely on.

mod common;

use common::{cli, fixture, shared, TempDir};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Asserts a clean failure: non-zero exit, exactly one `error:` line, no panic, and every
/// keyword somewhere in the message. Returns the message.
#[track_caller]
fn assert_error(out: &Output, keywords: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "expected failure, got success; stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "expected a non-zero exit code (not a signal): {:?}",
        out.status
    );
    assert!(!stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"), "panic:\n{stderr}");
    assert!(stderr.starts_with("error:"), "stderr must start with `error:`:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{stderr}");
    for k in keywords {
        assert!(stderr.contains(k), "stderr lacks `{k}`:\n{stderr}");
    }
    eprint!("{stderr}");
    stderr
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A safetensors file written by hand: 8-byte little-endian header length, JSON header, data.
fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn llama() -> PathBuf {
    fixture("parity/llama")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

// 1
#[test]
fn missing_model_path() {
    let out = cli(&["info", "/nonexistent/model"]);
    assert_error(&out, &["/nonexistent/model", "No such file"]);
}

// 2
#[test]
fn directory_without_config() {
    let d = TempDir::new();
    std::fs::copy(llama().join("model.safetensors"), d.join("model.safetensors")).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &[&s(d.path()), "config.json"]);
}

#[test]
fn directory_without_weights() {
    let d = TempDir::new();
    std::fs::copy(llama().join("config.json"), d.join("config.json")).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &[&s(d.path()), "model.safetensors"]);
}

// 3
#[test]
fn corrupt_gguf() {
    let d = TempDir::new();
    // Magic and a plausible version, then garbage; several seeds to shake out panics.
    for seed in 0..24u64 {
        let path = d.join(&format!("garbage{seed}.gguf"));
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&(1 + (seed % 3) as u32).to_le_bytes());
        bytes.extend(noise(seed, 4096));
        std::fs::write(&path, bytes).unwrap();
        assert_error(&cli(&["info", &s(&path)]), &[&format!("garbage{seed}.gguf"), "GGUF"]);
    }
    // Plausible counts and keys, then garbage: exercises the value and tensor-info readers.
    for seed in 0..48u64 {
        let path = d.join(&format!("partial{seed}.gguf"));
        let mut bytes = gguf_header(seed % 3, 1 + seed % 3);
        bytes.extend(gguf_str("general.architecture"));
        bytes.extend_from_slice(&((seed % 13) as u32).to_le_bytes());
        bytes.extend(noise(seed + 100, 512));
        std::fs::write(&path, bytes).unwrap();
        assert_error(&cli(&["info", &s(&path)]), &[&format!("partial{seed}.gguf")]);
    }
    // Just the magic.
    let path = d.join("magic.gguf");
    std::fs::write(&path, b"GGUF").unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["magic.gguf", "GGUF", "truncated"]);
}

/// GGUF v3 header: magic, version, tensor count, metadata count.
fn gguf_header(tensors: u64, kvs: u64) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&tensors.to_le_bytes());
    v.extend_from_slice(&kvs.to_le_bytes());
    v
}

fn gguf_str(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn gguf_kv_u32(key: &str, value: u32) -> Vec<u8> {
    let mut v = gguf_str(key);
    v.extend_from_slice(&4u32.to_le_bytes());
    v.extend_from_slice(&value.to_le_bytes());
    v
}

fn gguf_kv_str(key: &str, value: &str) -> Vec<u8> {
    let mut v = gguf_str(key);
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend(gguf_str(value));
    v
}

#[test]
fn gguf_bad_metadata() {
    let d = TempDir::new();
    // A zero alignment (the data offset is rounded up to a multiple of it).
    let path = d.join("align.gguf");
    let mut bytes = gguf_header(0, 2);
    bytes.extend(gguf_kv_str("general.architecture", "llama"));
    bytes.extend(gguf_kv_u32("general.alignment", 0));
    std::fs::write(&path, bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["align.gguf", "general.alignment"]);
    // An architecture we do not support.
    let path = d.join("arch.gguf");
    let mut bytes = gguf_header(0, 1);
    bytes.extend(gguf_kv_str("general.architecture", "bert"));
    std::fs::write(&path, bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["arch.gguf", "general.architecture", "bert", "supported", "llama"]);
    // A supported architecture without its sizes.
    let path = d.join("sizes.gguf");
    let mut bytes = gguf_header(0, 1);
    bytes.extend(gguf_kv_str("general.architecture", "llama"));
    std::fs::write(&path, bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["sizes.gguf", "llama.embedding_length", "missing"]);
    // Sizes present, no tensors at all.
    let path = d.join("empty.gguf");
    let kvs = [
        gguf_kv_u32("llama.embedding_length", 8),
        gguf_kv_u32("llama.attention.head_count", 2),
        gguf_kv_u32("llama.block_count", 1),
        gguf_kv_u32("llama.feed_forward_length", 16),
        gguf_kv_u32("llama.context_length", 16),
    ];
    let mut bytes = gguf_header(0, 1 + kvs.len() as u64);
    bytes.extend(gguf_kv_str("general.architecture", "llama"));
    kvs.iter().for_each(|kv| bytes.extend(kv));
    std::fs::write(&path, &bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["empty.gguf", "token_embd.weight", "missing"]);
    // The same with a scalar `token_embd.weight` (no dimensions) where a matrix belongs.
    let path = d.join("scalar.gguf");
    bytes[8..16].copy_from_slice(&1u64.to_le_bytes());
    bytes.extend(gguf_str("token_embd.weight"));
    bytes.extend_from_slice(&0u32.to_le_bytes()); // no dimensions
    bytes.extend_from_slice(&0u32.to_le_bytes()); // F32
    bytes.extend_from_slice(&0u64.to_le_bytes()); // offset
    bytes.resize(bytes.len().div_ceil(32) * 32 + 4, 0);
    std::fs::write(&path, &bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["scalar.gguf", "token_embd.weight"]);
}

#[test]
fn random_bytes_file() {
    let d = TempDir::new();
    let path = d.join("weights.bin");
    let mut bytes = noise(7, 4096);
    bytes[0] = b'x';
    std::fs::write(&path, bytes).unwrap();
    assert_error(&cli(&["info", &s(&path)]), &["weights.bin", "not a model", "config.json", "GGUF"]);
    // Same for an empty file.
    let empty = d.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    assert_error(&cli(&["info", &s(&empty)]), &["empty.bin", "not a model"]);
}

#[test]
fn truncated_safetensors() {
    let d = TempDir::new();
    copy_dir(&llama(), d.path());
    let file = d.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "truncated"]);
    // Truncated inside the header.
    std::fs::write(&file, &bytes[..100]).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "header"]);
    // Shorter than the 8-byte length prefix.
    std::fs::write(&file, &bytes[..3]).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors"]);
}

#[test]
fn config_not_json() {
    let d = TempDir::new();
    copy_dir(&llama(), d.path());
    std::fs::write(d.join("config.json"), "{ \"architectures\": [\"LlamaForCausalLM\"], oops").unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["config.json", "JSON"]);
}

// 4
#[test]
fn safetensors_header_offsets_beyond_file() {
    let d = TempDir::new();
    std::fs::copy(llama().join("config.json"), d.join("config.json")).unwrap();
    // 4 f32 = 16 bytes claimed, 8 present.
    let header = r#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    std::fs::write(d.join("model.safetensors"), raw_safetensors(header, &[0u8; 8])).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "model.embed_tokens.weight", "16"]);
}

#[test]
fn safetensors_header_shape_disagrees_with_offsets() {
    let d = TempDir::new();
    std::fs::copy(llama().join("config.json"), d.join("config.json")).unwrap();
    // shape [3, 2] f32 needs 24 bytes; the offsets span 16.
    let header = r#"{"model.norm.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}}"#;
    std::fs::write(d.join("model.safetensors"), raw_safetensors(header, &[0u8; 16])).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "model.norm.weight", "[3, 2]", "24", "16"]);
}

#[test]
fn safetensors_header_not_json() {
    let d = TempDir::new();
    std::fs::copy(llama().join("config.json"), d.join("config.json")).unwrap();
    std::fs::write(d.join("model.safetensors"), raw_safetensors("{not json", &[])).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "header"]);
    // A header length far beyond the file.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", "header"]);
}

// 5
#[test]
fn tensor_shape_disagrees_with_config() {
    let d = TempDir::new();
    copy_dir(&llama(), d.path());
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    assert!(cfg.contains("\"intermediate_size\": 128"));
    std::fs::write(d.join("config.json"), cfg.replace("\"intermediate_size\": 128", "\"intermediate_size\": 100"))
        .unwrap();
    assert_error(
        &cli(&["info", &s(d.path())]),
        &["model.safetensors", "model.layers.0.mlp.gate_proj.weight", "[128, 64]", "[100, 64]"],
    );
}

#[test]
fn missing_tensor() {
    let d = TempDir::new();
    copy_dir(&llama(), d.path());
    let file = d.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).unwrap();
    let dropped = "model.layers.1.self_attn.k_proj.weight";
    assert!(tensors.contains_key(dropped));
    let kept: Vec<(&String, &candle_core::Tensor)> = tensors.iter().filter(|(n, _)| *n != dropped).collect();
    let bytes = safetensors::serialize(kept, None).unwrap();
    std::fs::write(&file, bytes).unwrap();
    assert_error(&cli(&["info", &s(d.path())]), &["model.safetensors", dropped, "missing"]);
}

// 6
#[test]
fn unknown_architecture() {
    let d = TempDir::new();
    copy_dir(&llama(), d.path());
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(d.join("config.json"), cfg.replace("LlamaForCausalLM", "BertForMaskedLM")).unwrap();
    assert_error(
        &cli(&["info", &s(d.path())]),
        &[
            "config.json",
            "architectures",
            "BertForMaskedLM",
            "supported",
            "GPT2LMHeadModel",
            "LlamaForCausalLM",
            "Qwen2ForCausalLM",
        ],
    );
}

// 7
#[test]
fn unknown_hook_name() {
    let m = s(&llama());
    let out = cli(&["run", &m, "--token-ids", "1,2", "--capture", "blocks.0.attn.hook_patern"]);
    assert_error(&out, &["blocks.0.attn.hook_patern", "blocks.0.attn.hook_pattern"]);
}

#[test]
fn hook_layer_out_of_range() {
    let out = cli(&["run", &s(&llama()), "--token-ids", "1,2", "--capture", "blocks.9.hook_resid_pre"]);
    let msg = assert_error(&out, &["blocks.9.hook_resid_pre", "2 layers"]);
    assert!(!msg.contains("did you mean"), "an out-of-range layer needs no spelling suggestion:\n{msg}");
}

// 8
#[test]
fn empty_prompt() {
    let Some(model) = shared("models/stories260k/stories260k-f32.gguf") else { return };
    assert_error(&cli(&["run", &s(&model), "--prompt", ""]), &["--prompt", "empty"]);
}

#[test]
fn bad_token_ids() {
    let m = s(&llama());
    assert_error(&cli(&["run", &m, "--token-ids", ""]), &["--token-ids", "empty"]);
    assert_error(&cli(&["run", &m, "--token-ids", " , "]), &["--token-ids", "empty"]);
    assert_error(&cli(&["run", &m, "--token-ids", "1,x,3"]), &["--token-ids", "`x`", "1,2,3"]);
    assert_error(&cli(&["run", &m, "--token-ids", "1,-2"]), &["--token-ids", "`-2`"]);
}

// 9
#[test]
fn prompt_longer_than_context() {
    let ids: Vec<String> = (0..65).map(|i| (i % 90).to_string()).collect();
    let out = cli(&["run", &s(&llama()), "--token-ids", &ids.join(",")]);
    assert_error(&out, &["65", "64", "context"]);
}

// 10
#[test]
fn token_id_out_of_range() {
    let out = cli(&["run", &s(&llama()), "--token-ids", "1,5000,3"]);
    assert_error(&out, &["5000", "96"]);
}

// 11
#[test]
fn prompt_without_tokenizer() {
    let out = cli(&["run", &s(&llama()), "--prompt", "hello"]);
    assert_error(&out, &["no tokenizer", "--token-ids"]);
}

// 12
#[test]
fn save_cache_into_missing_directory() {
    let d = TempDir::new();
    let save_to = |target: &Path| {
        cli(&[
            "run",
            &s(&llama()),
            "--token-ids",
            "1,2,3",
            "--capture",
            "blocks.0.hook_resid_pre",
            "--save-cache",
            &s(target),
        ])
    };
    let out = save_to(&d.join("no/such/dir/cache.safetensors"));
    assert_error(&out, &["cache.safetensors", "No such file"]);
    assert!(out.stdout.is_empty(), "no results on stdout after a failed save");
    assert!(d.entries().is_empty(), "stray files: {:?}", d.entries());

    // A target whose parent is a file, not a directory.
    std::fs::write(d.join("plain"), b"x").unwrap();
    let out = save_to(&d.join("plain/cache.safetensors"));
    assert_error(&out, &["cache.safetensors"]);
    assert_eq!(d.entries(), vec!["plain".to_string()]);
}

#[test]
fn save_cache_writes_readable_safetensors() {
    let d = TempDir::new();
    let target = d.join("cache.safetensors");
    let hooks = ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern", "ln_final.hook_normalized"];
    let mut args: Vec<String> = ["run", &s(&llama()), "--token-ids", "1,2,3"].map(String::from).to_vec();
    for h in hooks {
        args.extend(["--capture".to_string(), h.to_string()]);
    }
    args.extend(["--save-cache".to_string(), s(&target)]);
    let out = cli(&args);
    assert!(out.status.success(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(d.entries(), vec!["cache.safetensors".to_string()], "only the result, no temp files");
    let cache = candle_core::safetensors::load(&target, &candle_core::Device::Cpu).unwrap();
    let mut keys: Vec<&str> = cache.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = hooks.to_vec();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(cache["blocks.0.hook_resid_pre"].dims(), &[1, 3, 64]);
    assert_eq!(cache["blocks.1.attn.hook_pattern"].dims(), &[1, 4, 3, 3]);
}

// Successful paths.
#[test]
fn run_json_top_k() {
    let out = cli(&["run", &s(&llama()), "--token-ids", "1,2,3", "--top-k", "3", "--json"]);
    assert!(out.status.success(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON object on one line:\n{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["input_ids"], serde_json::json!([1, 2, 3]));
    let top = v["top_k"].as_array().expect("top_k is a list");
    assert_eq!(top.len(), 3);
    let mut prev = f64::INFINITY;
    for c in top {
        let o = c.as_object().unwrap();
        for k in ["id", "token", "logit", "logprob"] {
            assert!(o.contains_key(k), "missing key `{k}` in {c}");
        }
        assert!(o["id"].as_u64().is_some_and(|id| id < 96), "{c}");
        let logit = o["logit"].as_f64().unwrap();
        let logprob = o["logprob"].as_f64().unwrap();
        assert!(logprob <= 0.0, "{c}");
        assert!(logit <= prev, "top_k not sorted by logit: {top:?}");
        prev = logit;
    }
}

#[test]
fn info_lists_hook_shapes() {
    let out = cli(&["info", &s(&fixture("parity/gpt2"))]);
    assert!(out.status.success(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("blocks.1.attn.hook_result"))
        .unwrap_or_else(|| panic!("no blocks.1.attn.hook_result in:\n{stdout}"));
    assert!(line.contains("(batch, seq, 4, 64)"), "{line}");
}

/// `--device`: a malformed name, a GPU in a CPU-only build (with how to get one), and a GPU for a
/// command that runs on the CPU are each one clear error before any work.
#[test]
fn bad_devices_are_refused_by_name() {
    let model = fixture("parity/gpt2");
    let m = model.to_str().unwrap();
    assert_error(&cli(&["info", m, "--device", "gpu"]), &["`gpu`", "cpu, cuda or cuda:N"]);
    assert_error(&cli(&["run", m, "--token-ids", "1,2", "--device", "cuda:x"]), &["`cuda:x`"]);
    if !circuitscope::model::device::CUDA_BUILT {
        assert_error(&cli(&["info", m, "--device", "cuda"]), &["`cuda`", "without CUDA", "scripts/build-cuda.sh"]);
    }
    let out = cli(&["info", m, "--device", "cpu", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["device"], "cpu");
}
