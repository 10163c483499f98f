//! File formats: sharded safetensors, GGUF (written here in llama.cpp's layout from the HF
//! fixtures: names, Conv1D transposes, q/k permutation, fused q/k/v, Gemma's baked-in norm +1),
//! every supported GGUF tensor type, and reduced-precision loading.

mod common;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use circuitscope::model::{LoadOptions, Model};
use common::{fixture, max_abs, max_abs_diff, TempDir};
use std::collections::HashMap;
use std::path::Path;

fn ids() -> Tensor {
    Tensor::new(&[[5u32, 17, 3, 40, 9, 77, 21], [1, 2, 60, 4, 33, 8, 90]], &Device::Cpu).unwrap()
}

fn logits(path: &Path, dtype: DType) -> Tensor {
    let m = Model::load(path, LoadOptions { dtype, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    m.decoder.logits(&ids()).unwrap().to_dtype(DType::F32).unwrap()
}

fn hf_tensors(family: &str) -> (HashMap<String, Tensor>, serde_json::Value) {
    let dir = fixture(&format!("parity/{family}"));
    let t = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let cfg = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    (t, cfg)
}

#[test]
fn sharded_safetensors_load_like_a_single_file() {
    let (tensors, _) = hf_tensors("llama");
    let tmp = TempDir::new();
    let dir = tmp.path();
    std::fs::copy(fixture("parity/llama/config.json"), dir.join("config.json")).unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let sub: Vec<(&str, &Tensor)> = part.iter().map(|n| (n.as_str(), &tensors[*n])).collect();
        std::fs::write(dir.join(&file), safetensors::serialize(sub, None).unwrap()).unwrap();
        for n in part.iter() {
            weight_map.insert(n.to_string(), file.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let single = logits(&fixture("parity/llama"), DType::F32);
    assert_eq!(max_abs_diff(&logits(dir, DType::F32), &single), 0.0);
}

#[test]
fn bf16_and_f16_stay_close_to_f32() {
    let f32 = logits(&fixture("parity/llama"), DType::F32);
    for dt in [DType::BF16, DType::F16] {
        let d = max_abs_diff(&logits(&fixture("parity/llama"), dt), &f32);
        assert!(d / max_abs(&f32) < 0.03, "{dt:?}: max deviation {d}");
    }
}

/// HF rows (head, {0: first half, 1: second half}, dh/2) → llama.cpp's interleaved pairs.
fn permute_rows(t: &Tensor, heads: usize) -> Tensor {
    let dims = t.dims().to_vec();
    let half = dims[0] / heads / 2;
    let mut shape = vec![heads, 2, half];
    shape.extend(&dims[1..]);
    t.reshape(shape).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape(dims).unwrap()
}

/// Writes an HF fixture as a GGUF file the way llama.cpp's converter lays it out.
fn write_gguf(family: &str, path: &Path, matrix_type: GgmlDType) {
    let (hf, cfg) = hf_tensors(family);
    let n = |k: &str| cfg[k].as_u64().unwrap() as u32;
    let layers = cfg["num_hidden_layers"].as_u64().or(cfg["n_layer"].as_u64()).unwrap() as usize;
    let heads = cfg["num_attention_heads"].as_u64().or(cfg["n_head"].as_u64()).unwrap() as usize;
    let kv = cfg["num_key_value_heads"].as_u64().map(|x| x as usize).unwrap_or(heads);
    let t = |name: &str| hf.get(name).unwrap_or_else(|| panic!("fixture lacks {name}")).clone();
    let tr = |name: &str| t(name).t().unwrap().contiguous().unwrap();
    let mut out: Vec<(String, Tensor)> = Vec::new();
    let (arch, mut meta): (&str, Vec<(String, gguf_file::Value)>) = match family {
        "gpt2" => {
            out.push(("token_embd.weight".into(), t("transformer.wte.weight")));
            out.push(("position_embd.weight".into(), t("transformer.wpe.weight")));
            for l in 0..layers {
                let h = |s: &str| format!("transformer.h.{l}.{s}");
                for (g, src, transpose) in [
                    ("attn_norm.weight", "ln_1.weight", false),
                    ("attn_norm.bias", "ln_1.bias", false),
                    ("ffn_norm.weight", "ln_2.weight", false),
                    ("ffn_norm.bias", "ln_2.bias", false),
                    ("attn_qkv.weight", "attn.c_attn.weight", true),
                    ("attn_qkv.bias", "attn.c_attn.bias", false),
                    ("attn_output.weight", "attn.c_proj.weight", true),
                    ("attn_output.bias", "attn.c_proj.bias", false),
                    ("ffn_up.weight", "mlp.c_fc.weight", true),
                    ("ffn_up.bias", "mlp.c_fc.bias", false),
                    ("ffn_down.weight", "mlp.c_proj.weight", true),
                    ("ffn_down.bias", "mlp.c_proj.bias", false),
                ] {
                    out.push((format!("blk.{l}.{g}"), if transpose { tr(&h(src)) } else { t(&h(src)) }));
                }
            }
            out.push(("output_norm.weight".into(), t("transformer.ln_f.weight")));
            out.push(("output_norm.bias".into(), t("transformer.ln_f.bias")));
            let meta = vec![
                ("gpt2.context_length".into(), gguf_file::Value::U32(n("n_positions"))),
                ("gpt2.embedding_length".into(), gguf_file::Value::U32(n("n_embd"))),
                (
                    "gpt2.feed_forward_length".into(),
                    gguf_file::Value::U32(cfg["n_inner"].as_u64().map(|x| x as u32).unwrap_or(4 * n("n_embd"))),
                ),
                ("gpt2.attention.head_count".into(), gguf_file::Value::U32(n("n_head"))),
                ("gpt2.attention.layer_norm_epsilon".into(), gguf_file::Value::F32(1e-5)),
            ];
            ("gpt2", meta)
        }
        "gpt_neox" => {
            let d = n("hidden_size") as usize;
            let dh = d / heads;
            out.push(("token_embd.weight".into(), t("gpt_neox.embed_in.weight")));
            out.push(("output.weight".into(), t("embed_out.weight")));
            for l in 0..layers {
                let h = |s: &str| format!("gpt_neox.layers.{l}.{s}");
                // per-head [q_h; k_h; v_h] rows → [q; k; v] blocks
                let qkv = t(&h("attention.query_key_value.weight"));
                let qkv = qkv.reshape((heads, 3, dh, d)).unwrap().transpose(0, 1).unwrap().contiguous().unwrap();
                out.push((format!("blk.{l}.attn_qkv.weight"), qkv.reshape((3 * d, d)).unwrap()));
                let b = t(&h("attention.query_key_value.bias"));
                let b = b.reshape((heads, 3, dh)).unwrap().transpose(0, 1).unwrap().contiguous().unwrap();
                out.push((format!("blk.{l}.attn_qkv.bias"), b.reshape(3 * d).unwrap()));
                for (g, src) in [
                    ("attn_norm.weight", "input_layernorm.weight"),
                    ("attn_norm.bias", "input_layernorm.bias"),
                    ("ffn_norm.weight", "post_attention_layernorm.weight"),
                    ("ffn_norm.bias", "post_attention_layernorm.bias"),
                    ("attn_output.weight", "attention.dense.weight"),
                    ("attn_output.bias", "attention.dense.bias"),
                    ("ffn_up.weight", "mlp.dense_h_to_4h.weight"),
                    ("ffn_up.bias", "mlp.dense_h_to_4h.bias"),
                    ("ffn_down.weight", "mlp.dense_4h_to_h.weight"),
                    ("ffn_down.bias", "mlp.dense_4h_to_h.bias"),
                ] {
                    out.push((format!("blk.{l}.{g}"), t(&h(src))));
                }
            }
            out.push(("output_norm.weight".into(), t("gpt_neox.final_layer_norm.weight")));
            out.push(("output_norm.bias".into(), t("gpt_neox.final_layer_norm.bias")));
            let rot = (dh as f64 * cfg["rope_parameters"]["partial_rotary_factor"].as_f64().unwrap()) as u32;
            let meta = vec![
                ("gptneox.context_length".into(), gguf_file::Value::U32(n("max_position_embeddings"))),
                ("gptneox.embedding_length".into(), gguf_file::Value::U32(n("hidden_size"))),
                ("gptneox.feed_forward_length".into(), gguf_file::Value::U32(n("intermediate_size"))),
                ("gptneox.attention.head_count".into(), gguf_file::Value::U32(heads as u32)),
                ("gptneox.attention.layer_norm_epsilon".into(), gguf_file::Value::F32(1e-5)),
                ("gptneox.rope.dimension_count".into(), gguf_file::Value::U32(rot)),
                ("gptneox.use_parallel_residual".into(), gguf_file::Value::Bool(true)),
            ];
            ("gptneox", meta)
        }
        _ => {
            let arch = if family == "llama" { "llama" } else { family };
            let plus_one = family == "gemma";
            let norm = |name: &str| if plus_one { (t(name) + 1.0).unwrap() } else { t(name) };
            out.push(("token_embd.weight".into(), t("model.embed_tokens.weight")));
            if let Some(w) = hf.get("lm_head.weight") {
                out.push(("output.weight".into(), w.clone()));
            }
            for l in 0..layers {
                let h = |s: &str| format!("model.layers.{l}.{s}");
                let (mut q, mut k) = (t(&h("self_attn.q_proj.weight")), t(&h("self_attn.k_proj.weight")));
                if arch == "llama" {
                    q = permute_rows(&q, heads);
                    k = permute_rows(&k, kv);
                }
                out.push((format!("blk.{l}.attn_q.weight"), q));
                out.push((format!("blk.{l}.attn_k.weight"), k));
                for (g, src) in [
                    ("attn_v.weight", "self_attn.v_proj.weight"),
                    ("attn_output.weight", "self_attn.o_proj.weight"),
                    ("ffn_gate.weight", "mlp.gate_proj.weight"),
                    ("ffn_up.weight", "mlp.up_proj.weight"),
                    ("ffn_down.weight", "mlp.down_proj.weight"),
                ] {
                    out.push((format!("blk.{l}.{g}"), t(&h(src))));
                }
                for x in ["q", "k", "v"] {
                    if let Some(b) = hf.get(&h(&format!("self_attn.{x}_proj.bias"))) {
                        out.push((format!("blk.{l}.attn_{x}.bias"), b.clone()));
                    }
                }
                out.push((format!("blk.{l}.attn_norm.weight"), norm(&h("input_layernorm.weight"))));
                out.push((format!("blk.{l}.ffn_norm.weight"), norm(&h("post_attention_layernorm.weight"))));
            }
            out.push(("output_norm.weight".into(), norm("model.norm.weight")));
            let a = |k: &str| format!("{arch}.{k}");
            let head_dim = cfg["head_dim"].as_u64().map(|x| x as u32).unwrap_or(n("hidden_size") / heads as u32);
            let theta = cfg["rope_parameters"]["rope_theta"].as_f64().unwrap() as f32;
            let meta = vec![
                (a("context_length"), gguf_file::Value::U32(n("max_position_embeddings"))),
                (a("embedding_length"), gguf_file::Value::U32(n("hidden_size"))),
                (a("feed_forward_length"), gguf_file::Value::U32(n("intermediate_size"))),
                (a("attention.head_count"), gguf_file::Value::U32(heads as u32)),
                (a("attention.head_count_kv"), gguf_file::Value::U32(kv as u32)),
                (a("attention.key_length"), gguf_file::Value::U32(head_dim)),
                (
                    a("attention.layer_norm_rms_epsilon"),
                    gguf_file::Value::F32(cfg["rms_norm_eps"].as_f64().unwrap() as f32),
                ),
                (a("rope.freq_base"), gguf_file::Value::F32(theta)),
            ];
            (arch, meta)
        }
    };
    meta.push(("general.architecture".into(), gguf_file::Value::String(arch.into())));
    meta.push((format!("{arch}.block_count"), gguf_file::Value::U32(layers as u32)));
    write_gguf_file(path, &meta, out, matrix_type);
}

/// Writes a GGUF file, storing matrices as `matrix_type` and vectors (norms, biases) as F32.
fn write_gguf_file(
    path: &Path,
    meta: &[(String, gguf_file::Value)],
    tensors: Vec<(String, Tensor)>,
    matrix_type: GgmlDType,
) {
    let q: Vec<(String, QTensor)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let dtype = if t.rank() == 2 { matrix_type } else { GgmlDType::F32 };
            (name, QTensor::quantize(&t, dtype).unwrap())
        })
        .collect();
    let meta_refs: Vec<(&str, &gguf_file::Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut std::fs::File::create(path).unwrap(), &meta_refs, &tensor_refs).unwrap();
}

#[test]
fn gguf_in_llama_cpp_layout_matches_the_safetensors_model() {
    let tmp = TempDir::new();
    let dir = tmp.path();
    for family in ["llama", "qwen2", "gemma", "gpt2", "gpt_neox"] {
        let path = dir.join(format!("{family}.gguf"));
        write_gguf(family, &path, GgmlDType::F32);
        let d = max_abs_diff(&logits(&path, DType::F32), &logits(&fixture(&format!("parity/{family}")), DType::F32));
        assert!(d < 1e-5, "{family}: GGUF and safetensors logits differ by {d}");
    }
}

/// Cosine similarity of two logit tensors.
fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn quantised_gguf_tensors_dequantise_on_load() {
    let tmp = TempDir::new();
    let dir = tmp.path();
    let reference = logits(&fixture("parity/llama"), DType::F32);
    // (type, minimum cosine similarity of the logits to the f32 model's; measured values sit
    // comfortably above: a wrong dequantisation gives a cosine near 0)
    // Regression floors on the cosine, chosen so 1 − cosine may grow about 2× (more for the
    // coarse types) over its measurement: F16 1.000000, BF16 0.999977, Q8_0 0.999807, Q5_0
    // 0.985, Q5_1 0.990, Q4_0 0.945, Q4_1 0.960 (2026-12-04; quantisation is deterministic).
    for (dtype, min_cos) in [
        (GgmlDType::F16, 0.99999),
        (GgmlDType::BF16, 0.9995),
        (GgmlDType::Q8_0, 0.999),
        (GgmlDType::Q5_0, 0.97),
        (GgmlDType::Q5_1, 0.97),
        (GgmlDType::Q4_0, 0.9),
        (GgmlDType::Q4_1, 0.92),
    ] {
        let path = dir.join(format!("llama-{dtype:?}.gguf"));
        write_gguf("llama", &path, dtype);
        let c = cosine(&logits(&path, DType::F32), &reference);
        eprintln!("{dtype:?}: cosine to f32 logits {c:.6}");
        assert!(c >= min_cos && c < 1.0 + 1e-9, "{dtype:?}: cosine {c} < {min_cos}");
    }
}

/// A random llama-architecture GGUF whose rows are long enough (256) for the K-quant types.
fn write_random_llama(path: &Path, matrix_type: GgmlDType) {
    let (d, f, v, heads, kv) = (256usize, 512usize, 128usize, 4usize, 2usize);
    let mut state = 12345u64;
    let mut rand = |shape: &[usize], std: f32| -> Tensor {
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * std * 1.732
            })
            .collect();
        Tensor::from_vec(vals, shape, &Device::Cpu).unwrap()
    };
    let mut tensors = vec![
        ("token_embd.weight".to_string(), rand(&[v, d], 1.0)),
        ("output.weight".to_string(), rand(&[v, d], 0.1)),
        ("output_norm.weight".to_string(), (rand(&[d], 0.1) + 1.0).unwrap()),
    ];
    for (name, shape, std) in [
        ("attn_q.weight", [heads * 64, d], 0.08),
        ("attn_k.weight", [kv * 64, d], 0.08),
        ("attn_v.weight", [kv * 64, d], 0.08),
        ("attn_output.weight", [d, heads * 64], 0.08),
        ("ffn_gate.weight", [f, d], 0.08),
        ("ffn_up.weight", [f, d], 0.08),
        ("ffn_down.weight", [d, f], 0.06),
    ] {
        tensors.push((format!("blk.0.{name}"), rand(&shape, std)));
    }
    tensors.push(("blk.0.attn_norm.weight".into(), (rand(&[d], 0.1) + 1.0).unwrap()));
    tensors.push(("blk.0.ffn_norm.weight".into(), (rand(&[d], 0.1) + 1.0).unwrap()));
    let meta: Vec<(String, gguf_file::Value)> = vec![
        ("general.architecture".into(), gguf_file::Value::String("llama".into())),
        ("llama.context_length".into(), gguf_file::Value::U32(64)),
        ("llama.embedding_length".into(), gguf_file::Value::U32(d as u32)),
        ("llama.feed_forward_length".into(), gguf_file::Value::U32(f as u32)),
        ("llama.block_count".into(), gguf_file::Value::U32(1)),
        ("llama.attention.head_count".into(), gguf_file::Value::U32(heads as u32)),
        ("llama.attention.head_count_kv".into(), gguf_file::Value::U32(kv as u32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), gguf_file::Value::F32(1e-5)),
    ];
    write_gguf_file(path, &meta, tensors, matrix_type);
}

#[test]
fn k_quant_gguf_tensors_dequantise_on_load() {
    let tmp = TempDir::new();
    let dir = tmp.path();
    let f32_path = dir.join("f32.gguf");
    write_random_llama(&f32_path, GgmlDType::F32);
    let reference = logits(&f32_path, DType::F32);
    assert!(max_abs(&reference) > 1.0, "the random model must produce non-trivial logits");
    // Regression floors, as above: measured Q8_0 0.999950, Q6K 0.999173, Q5K 0.997107, Q4K
    // 0.988, Q3K 0.938, Q2K 0.812 (2026-12-04).
    for (dtype, min_cos) in [
        (GgmlDType::Q8_0, 0.999),
        (GgmlDType::Q6K, 0.998),
        (GgmlDType::Q5K, 0.99),
        (GgmlDType::Q4K, 0.97),
        (GgmlDType::Q3K, 0.9),
        (GgmlDType::Q2K, 0.7),
    ] {
        let path = dir.join(format!("{dtype:?}.gguf"));
        write_random_llama(&path, dtype);
        let c = cosine(&logits(&path, DType::F32), &reference);
        eprintln!("{dtype:?}: cosine to f32 logits {c:.6}");
        assert!(c >= min_cos, "{dtype:?}: cosine {c} < {min_cos}");
        assert!(c < 1.0 - 1e-7, "{dtype:?}: identical to f32, so the tensors were not quantised");
    }
}

/// Q8_1 and Q8_K are llama.cpp's dot-product intermediates, not storage types, and candle's GGUF
/// reader does not read them: a file holding them is refused with one error naming the file,
/// the tensor and the type (the README lists the types that load).
#[test]
fn q8_1_and_q8k_tensors_are_refused_by_name() {
    let dir = common::TempDir::new();
    for (dtype, name) in [(GgmlDType::Q8_1, "Q8_1"), (GgmlDType::Q8K, "Q8K")] {
        let path = dir.join(&format!("{name}.gguf"));
        write_random_llama(&path, dtype);
        let err = Model::load(&path, LoadOptions::default()).err().expect("a Q8_1/Q8K file must not load").to_string();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains("token_embd.weight") && err.contains(name),
            "{name}: {err}"
        );
    }
}
