//! Parity with Hugging Face transformers for every supported family: logits, hook activations
//! and gradients against fixtures made by `tests/reference/make_parity_fixtures.py`.

mod common;

use candle_core::Device;
use common::fixture;
use common::parity::{check_family_on, FAMILIES};

fn check_family(family: &str) {
    check_family_on(family, &Device::Cpu);
}

#[test]
fn gpt2_matches_transformers() {
    check_family("gpt2");
}
#[test]
fn llama_matches_transformers() {
    check_family("llama");
}
#[test]
fn llama3_rope_scaling_tied_matches_transformers() {
    check_family("llama3");
}
#[test]
fn qwen2_matches_transformers() {
    check_family("qwen2");
}
#[test]
fn mistral_sliding_window_matches_transformers() {
    check_family("mistral");
}
#[test]
fn gpt_neox_matches_transformers() {
    check_family("gpt_neox");
}
#[test]
fn gemma_matches_transformers() {
    check_family("gemma");
}

#[test]
fn every_family_has_a_fixture() {
    for f in FAMILIES {
        assert!(fixture(&format!("parity/{f}/reference.safetensors")).exists(), "missing fixture for {f}");
    }
}
