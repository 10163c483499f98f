#!/usr/bin/env python3
"""Build tiny random Hugging Face checkpoints and TransformerLens-style reference
activations / gradients for circuitscope's parity tests.

For every family this writes tests/fixtures/parity/<family>/ with
  config.json, model.safetensors  -- exactly what `save_pretrained` writes
  reference.safetensors           -- reference tensors (see README.md)

Everything is captured from the real HF model with forward hooks / pre-hooks
(eager attention, float32, CPU).  Where HF has no module boundary (q/k/v of the
fused GPT-2 / GPT-NeoX projections, the attention scores) the value is computed
from captured module inputs and the model's weights, and cross-checked against
HF's own outputs (asserts below).  Gradients come from a real torch backward of
    M = sum_b (logits[b, -1, A] - logits[b, -1, B]),  A = 3, B = 5.

Run:  python tests/reference/make_parity_fixtures.py [--out tests/fixtures/parity]
"""

import argparse
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import save_file, load_file

import transformers
from transformers import (
    GemmaConfig,
    GemmaForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

HIDDEN = 64
LAYERS = 2
HEADS = 4
HEAD_DIM = 16
INTER = 128
VOCAB = 96
MAX_POS = 64
BATCH = 2
SEQ = 7
METRIC_A = 3
METRIC_B = 5

MATRIX_STD = 0.15  # weights and embeddings
BIAS_STD = 0.1
NORM_STD = 0.1

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    num_hidden_layers=LAYERS,
    num_attention_heads=HEADS,
    intermediate_size=INTER,
    max_position_embeddings=MAX_POS,
)


# --------------------------------------------------------------------------
# Family descriptions.  Each entry knows how to build the config/model and
# where the relevant modules live.  "llama-like" covers llama, llama3, qwen2,
# mistral and gemma, which share the q_proj/k_proj/v_proj/o_proj +
# gate/up/down layout.
# --------------------------------------------------------------------------


def llama_like_parts(model):
    base = model.model
    layers = []
    for layer in base.layers:
        a = layer.self_attn
        layers.append(
            dict(
                layer=layer,
                attn=a,
                q=a.q_proj,
                k=a.k_proj,
                v=a.v_proj,
                o=a.o_proj,
                ln_mid=layer.post_attention_layernorm,  # input == resid_mid
                mlp=layer.mlp,
                mlp_in=layer.mlp.gate_proj,
                mlp_out_proj=layer.mlp.down_proj,
            )
        )
    return dict(embed=base.embed_tokens, pos_embed=None, layers=layers, ln_final=base.norm,
                rotary=base.rotary_emb)


def gpt2_parts(model):
    base = model.transformer
    layers = []
    for block in base.h:
        layers.append(
            dict(
                layer=block,
                attn=block.attn,
                qkv=block.attn.c_attn,
                o=block.attn.c_proj,
                ln_mid=block.ln_2,
                mlp=block.mlp,
                mlp_in=block.mlp.c_fc,
                mlp_out_proj=block.mlp.c_proj,
            )
        )
    return dict(embed=base.wte, pos_embed=base.wpe, layers=layers, ln_final=base.ln_f, rotary=None)


def neox_parts(model):
    base = model.gpt_neox
    layers = []
    for layer in base.layers:
        layers.append(
            dict(
                layer=layer,
                attn=layer.attention,
                qkv=layer.attention.query_key_value,
                o=layer.attention.dense,
                ln_mid=None,  # parallel residual: no resid_mid
                mlp=layer.mlp,
                mlp_in=layer.mlp.dense_h_to_4h,
                mlp_out_proj=layer.mlp.dense_4h_to_h,
            )
        )
    return dict(embed=base.embed_in, pos_embed=None, layers=layers, ln_final=base.final_layer_norm,
                rotary=base.rotary_emb)


FAMILIES = {
    "gpt2": dict(
        seed=1001,
        cls=GPT2LMHeadModel,
        config=lambda: GPT2Config(
            vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_inner=INTER,
            n_positions=MAX_POS, activation_function="gelu_new",
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1,  # defaults (50256) lie outside the tiny vocab
        ),
        parts=gpt2_parts, kind="gpt2", n_kv=HEADS, rotary_dims=0, rope=None,
        gemma_norm=False,
    ),
    "llama": dict(
        seed=1002,
        cls=LlamaForCausalLM,
        config=lambda: LlamaConfig(**COMMON, num_key_value_heads=2, tie_word_embeddings=False,
                                   hidden_act="silu"),
        parts=llama_like_parts, kind="llama", n_kv=2, rotary_dims=HEAD_DIM,
        rope=dict(theta=10000.0), gemma_norm=False,
    ),
    "llama3": dict(
        seed=1003,
        cls=LlamaForCausalLM,
        config=lambda: LlamaConfig(
            **COMMON, num_key_value_heads=HEADS, tie_word_embeddings=True, hidden_act="silu",
            rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
        ),
        parts=llama_like_parts, kind="llama", n_kv=HEADS, rotary_dims=HEAD_DIM,
        rope=dict(theta=500000.0, llama3=dict(factor=8.0, low=1.0, high=4.0, orig=16)),
        gemma_norm=False,
    ),
    "qwen2": dict(
        seed=1004,
        cls=Qwen2ForCausalLM,
        config=lambda: Qwen2Config(**COMMON, num_key_value_heads=2, tie_word_embeddings=True,
                                   hidden_act="silu"),
        parts=llama_like_parts, kind="llama", n_kv=2, rotary_dims=HEAD_DIM,
        rope=dict(theta=10000.0), gemma_norm=False,
    ),
    # Sliding window: in transformers 5.23.0 (and 4.57.6, checked) MistralModel builds its mask with
    # create_sliding_window_causal_mask whenever config.sliding_window is set, and EAGER attention
    # does apply it: query i sees keys j with  i - sliding_window < j <= i  (the last 4 positions,
    # itself included).  With seq len 7 rows 4..6 lose their earliest keys.  build_family asserts
    # that the additive mask HF hands to the attention module is exactly this pattern, and the
    # stored scores / pattern are HF's actual (windowed) ones.
    "mistral": dict(
        seed=1005,
        cls=MistralForCausalLM,
        config=lambda: MistralConfig(**COMMON, num_key_value_heads=1, tie_word_embeddings=False,
                                     hidden_act="silu", sliding_window=4),
        parts=llama_like_parts, kind="llama", n_kv=1, rotary_dims=HEAD_DIM,
        rope=dict(theta=10000.0), gemma_norm=False, sliding_window=4,
    ),
    "gpt_neox": dict(
        seed=1006,
        cls=GPTNeoXForCausalLM,
        config=lambda: GPTNeoXConfig(**COMMON, rotary_pct=0.25, use_parallel_residual=True,
                                     hidden_act="gelu", tie_word_embeddings=False,
                                     hidden_dropout=0.0, attention_dropout=0.0),
        parts=neox_parts, kind="neox", n_kv=HEADS, rotary_dims=4,
        rope=dict(theta=10000.0), gemma_norm=False,
    ),
    "gemma": dict(
        seed=1007,
        cls=GemmaForCausalLM,
        config=lambda: GemmaConfig(**COMMON, num_key_value_heads=1, head_dim=HEAD_DIM,
                                   hidden_act="gelu_pytorch_tanh",
                                   hidden_activation="gelu_pytorch_tanh",
                                   tie_word_embeddings=True),
        parts=llama_like_parts, kind="llama", n_kv=1, rotary_dims=HEAD_DIM,
        rope=dict(theta=10000.0), gemma_norm=True,
    ),
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def reinit_(model, gemma_norm):
    """Re-initialise EVERY parameter (tied parameters are visited once)."""
    seen = set()
    with torch.no_grad():
        for name, p in model.named_parameters(remove_duplicate=True):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if name.endswith("bias"):
                p.normal_(0.0, BIAS_STD)
            elif p.ndim == 1:  # LayerNorm / RMSNorm weight
                if gemma_norm:
                    p.normal_(0.0, NORM_STD)  # Gemma RMSNorm multiplies by (1 + w)
                else:
                    p.normal_(0.0, NORM_STD).add_(1.0)
            else:
                p.normal_(0.0, MATRIX_STD)


def rope_inv_freq(rope, rot_dims):
    """Independent re-implementation of the HF inverse frequencies (default and llama3)."""
    inv = 1.0 / (rope["theta"] ** (torch.arange(0, rot_dims, 2, dtype=torch.int64).float() / rot_dims))
    l3 = rope.get("llama3")
    if l3 is not None:
        low_wl = l3["orig"] / l3["low"]
        high_wl = l3["orig"] / l3["high"]
        wl = 2 * math.pi / inv
        out = torch.where(wl > low_wl, inv / l3["factor"], inv)
        smooth = (l3["orig"] / wl - l3["low"]) / (l3["high"] - l3["low"])
        smoothed = (1 - smooth) * out / l3["factor"] + smooth * out
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        inv = torch.where(medium, smoothed, out)
    return inv


def apply_rope(x, inv_freq, rot_dims):
    """x: (b, H, s, dh).  rotate-half RoPE on the first rot_dims dims of each head."""
    s = x.shape[2]
    pos = torch.arange(s, dtype=torch.float32)
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)  # (s, rot_dims)
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rot_dims], x[..., rot_dims:]
    half = rot_dims // 2
    rot = torch.cat([-xr[..., half:], xr[..., :half]], dim=-1)
    return torch.cat([xr * cos + rot * sin, xp], dim=-1)


def first_tensor(args, kwargs, name="hidden_states"):
    if args:
        return args[0]
    return kwargs[name]


class Recorder:
    def __init__(self):
        self.acts = {}
        self.aux = {}
        self.handles = []

    def keep(self, name, t):
        assert isinstance(t, torch.Tensor), name
        if t.requires_grad:
            t.retain_grad()
        self.acts[name] = t

    def fwd(self, module, fn):
        self.handles.append(module.register_forward_hook(lambda m, i, o: fn(o)))

    def pre(self, module, fn):
        self.handles.append(
            module.register_forward_pre_hook(lambda m, a, k: fn(a, k), with_kwargs=True)
        )

    def remove(self):
        for h in self.handles:
            h.remove()


def install_hooks(rec, parts, spec):
    rec.fwd(parts["embed"], lambda o: rec.keep("hook_embed", o))
    if parts["pos_embed"] is not None:
        rec.fwd(parts["pos_embed"], lambda o: rec.keep("hook_pos_embed", o))
    for l, P in enumerate(parts["layers"]):
        pfx = f"blocks.{l}"

        def layer_pre(a, k, pfx=pfx):
            rec.keep(f"{pfx}.hook_resid_pre", first_tensor(a, k))

        def layer_post(o, pfx=pfx):
            rec.keep(f"{pfx}.hook_resid_post", o[0] if isinstance(o, tuple) else o)

        rec.pre(P["layer"], layer_pre)
        rec.fwd(P["layer"], layer_post)

        def attn_pre(a, k, pfx=pfx):
            rec.aux[f"{pfx}.attn_in"] = first_tensor(a, k)
            rec.aux[f"{pfx}.mask"] = k.get("attention_mask")

        def attn_post(o, pfx=pfx):
            rec.keep(f"{pfx}.hook_attn_out", o[0])
            rec.keep(f"{pfx}.attn.hook_pattern", o[1])

        rec.pre(P["attn"], attn_pre)
        rec.fwd(P["attn"], attn_post)

        if "q" in P:
            rec.fwd(P["q"], lambda o, pfx=pfx: rec.aux.__setitem__(f"{pfx}.q_raw", o))
            rec.fwd(P["k"], lambda o, pfx=pfx: rec.aux.__setitem__(f"{pfx}.k_raw", o))
            rec.fwd(P["v"], lambda o, pfx=pfx: rec.aux.__setitem__(f"{pfx}.v_raw", o))
        else:
            rec.fwd(P["qkv"], lambda o, pfx=pfx: rec.aux.__setitem__(f"{pfx}.qkv_raw", o))

        rec.pre(P["o"], lambda a, k, pfx=pfx: rec.keep(f"{pfx}.attn.z_flat", first_tensor(a, k, "input")))
        if P["ln_mid"] is not None:
            rec.pre(P["ln_mid"], lambda a, k, pfx=pfx: rec.keep(f"{pfx}.hook_resid_mid", first_tensor(a, k, "input")))
        rec.fwd(P["mlp_in"], lambda o, pfx=pfx: rec.keep(f"{pfx}.mlp.hook_pre", o))
        rec.pre(P["mlp_out_proj"], lambda a, k, pfx=pfx: rec.keep(f"{pfx}.mlp.hook_post", first_tensor(a, k, "input")))
        rec.fwd(P["mlp"], lambda o, pfx=pfx: rec.keep(f"{pfx}.hook_mlp_out", o))
    rec.fwd(parts["ln_final"], lambda o: rec.keep("ln_final.hook_normalized", o))


def split_qkv(kind, rec, pfx, n_kv):
    """Return q (b,s,H,dh), k and v (b,s,n_kv,dh): projections BEFORE rotary, biases included."""
    b, s = BATCH, SEQ
    if kind == "llama":
        q = rec.aux[f"{pfx}.q_raw"].view(b, s, HEADS, HEAD_DIM)
        k = rec.aux[f"{pfx}.k_raw"].view(b, s, n_kv, HEAD_DIM)
        v = rec.aux[f"{pfx}.v_raw"].view(b, s, n_kv, HEAD_DIM)
    elif kind == "gpt2":
        # Conv1D c_attn output = [q (all heads) | k (all heads) | v (all heads)]
        q, k, v = rec.aux[f"{pfx}.qkv_raw"].split(HIDDEN, dim=-1)
        q = q.reshape(b, s, HEADS, HEAD_DIM)
        k = k.reshape(b, s, HEADS, HEAD_DIM)
        v = v.reshape(b, s, HEADS, HEAD_DIM)
    elif kind == "neox":
        # query_key_value output is per head [q_h | k_h | v_h] (head-major interleave)
        qkv = rec.aux[f"{pfx}.qkv_raw"].view(b, s, HEADS, 3 * HEAD_DIM)
        q, k, v = qkv.split(HEAD_DIM, dim=-1)
    else:
        raise ValueError(kind)
    return q, k, v


def expand_kv(x, n_kv):
    """(b,s,n_kv,dh) -> (b,s,H,dh); query head h uses kv head h // (H / n_kv)."""
    return x.repeat_interleave(HEADS // n_kv, dim=2)


def build_family(name, spec, out_root):
    torch.manual_seed(spec["seed"])
    config = spec["config"]()
    config._attn_implementation = "eager"
    model = spec["cls"](config)
    model.config._attn_implementation = "eager"
    model.eval()
    model.float()
    reinit_(model, spec["gemma_norm"])
    if getattr(model.config, "tie_word_embeddings", False):
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight, name
    else:
        assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight, name

    gen = torch.Generator().manual_seed(spec["seed"] + 50)
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen, dtype=torch.int64)

    parts = spec["parts"](model)
    rec = Recorder()
    install_hooks(rec, parts, spec)
    out = model(input_ids=input_ids, output_attentions=True, use_cache=False)
    logits = out.logits
    rec.remove()

    # the attentions HF returns (output_attentions=True) are the same tensors we hooked
    assert out.attentions is not None and len(out.attentions) == LAYERS
    for l in range(LAYERS):
        torch.testing.assert_close(out.attentions[l], rec.acts[f"blocks.{l}.attn.hook_pattern"], rtol=0, atol=0)

    M = (logits[:, -1, METRIC_A] - logits[:, -1, METRIC_B]).sum()
    M.backward()

    n_kv = spec["n_kv"]
    ref = {}
    grads = {}
    ref["input_ids"] = input_ids
    ref["metric_tokens"] = torch.tensor([METRIC_A, METRIC_B], dtype=torch.int64)
    ref["logits"] = logits.detach()
    embed_t = rec.acts["hook_embed"]
    if name == "gemma":
        # hook_embed is what enters the residual stream.  transformers 5 scales inside the embedding
        # module (GemmaTextScaledWordEmbedding, embed_scale buffer = sqrt(hidden) cast to the weight
        # dtype); transformers 4.x multiplies by a `normalizer` tensor (in hidden_states.dtype) after
        # a plain nn.Embedding.  Either way the residual-stream input is blocks.0.hook_resid_pre.
        resid0 = rec.acts["blocks.0.hook_resid_pre"]
        if resid0 is not embed_t:
            torch.testing.assert_close(resid0, embed_t * torch.tensor(HIDDEN ** 0.5), rtol=0, atol=0)
            embed_t = resid0
    ref["hook_embed"] = embed_t.detach()
    grads["grad.hook_embed"] = embed_t.grad
    if "hook_pos_embed" in rec.acts:
        # wpe is called with position_ids of shape (1, s): broadcast to (b, s, d)
        ref["hook_pos_embed"] = rec.acts["hook_pos_embed"].detach().expand(BATCH, SEQ, HIDDEN).contiguous()

    if spec["rope"] is not None:
        inv = rope_inv_freq(spec["rope"], spec["rotary_dims"])
        torch.testing.assert_close(inv, parts["rotary"].inv_freq.float(), rtol=1e-6, atol=0)

    diag = {}
    for l, P in enumerate(parts["layers"]):
        pfx = f"blocks.{l}"
        for key in ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out"):
            ref[f"{pfx}.{key}"] = rec.acts[f"{pfx}.{key}"].detach()
        if P["ln_mid"] is not None:
            ref[f"{pfx}.hook_resid_mid"] = rec.acts[f"{pfx}.hook_resid_mid"].detach()
        ref[f"{pfx}.mlp.hook_pre"] = rec.acts[f"{pfx}.mlp.hook_pre"].detach()
        ref[f"{pfx}.mlp.hook_post"] = rec.acts[f"{pfx}.mlp.hook_post"].detach()
        pattern = rec.acts[f"{pfx}.attn.hook_pattern"]
        ref[f"{pfx}.attn.hook_pattern"] = pattern.detach()

        q, k, v = split_qkv(spec["kind"], rec, pfx, n_kv)
        q, k, v = q.detach(), k.detach(), v.detach()
        ref[f"{pfx}.attn.hook_q"] = q.contiguous()
        ref[f"{pfx}.attn.hook_k"] = expand_kv(k, n_kv).contiguous()
        ref[f"{pfx}.attn.hook_v"] = expand_kv(v, n_kv).contiguous()

        # --- attention scores, recomputed independently --------------------
        qh = q.transpose(1, 2)  # (b,H,s,dh)
        kh = expand_kv(k, n_kv).transpose(1, 2)
        vh = expand_kv(v, n_kv).transpose(1, 2)
        if spec["rope"] is not None:
            qh = apply_rope(qh, inv, spec["rotary_dims"])
            kh = apply_rope(kh, inv, spec["rotary_dims"])
        scores = (qh @ kh.transpose(-1, -2)) * HEAD_DIM ** -0.5
        qi = torch.arange(SEQ)[:, None]
        ki = torch.arange(SEQ)[None, :]
        allowed = ki <= qi
        window = spec.get("sliding_window")
        if window is not None:
            allowed = allowed & (ki > qi - window)
        # compare with the mask HF actually handed to the attention module
        hf_mask = rec.aux[f"{pfx}.mask"]
        assert hf_mask is not None, "eager attention got no materialised mask"
        hf_allowed = hf_mask.detach() == 0
        hf_allowed = hf_allowed.expand(BATCH, 1, SEQ, SEQ)[:, 0]
        assert torch.equal(hf_allowed, allowed.expand(BATCH, SEQ, SEQ)), (name, hf_mask)
        scores = scores.masked_fill(~allowed, float("-inf"))
        ref[f"{pfx}.attn.hook_attn_scores"] = scores.contiguous()
        torch.testing.assert_close(torch.softmax(scores, dim=-1), pattern.detach(), rtol=0, atol=1e-6)

        # --- z, per-head result ---------------------------------------------
        z_flat = rec.acts[f"{pfx}.attn.z_flat"]
        z = z_flat.detach().view(BATCH, SEQ, HEADS, HEAD_DIM)
        ref[f"{pfx}.attn.hook_z"] = z.contiguous()
        torch.testing.assert_close(z, (pattern.detach() @ vh).transpose(1, 2), rtol=0, atol=1e-5)
        o = P["o"]
        if spec["kind"] == "gpt2":  # Conv1D: weight (in, out), y = x @ W + b
            W_O = o.weight.detach().view(HEADS, HEAD_DIM, HIDDEN)
        else:  # nn.Linear: weight (out, in), y = x @ W.T + b
            W_O = o.weight.detach().T.contiguous().view(HEADS, HEAD_DIM, HIDDEN)
        result = torch.einsum("bshd,hde->bshe", z, W_O)
        ref[f"{pfx}.attn.hook_result"] = result.contiguous()
        recon = result.sum(dim=2)
        if o.bias is not None:
            recon = recon + o.bias.detach()
        torch.testing.assert_close(recon, ref[f"{pfx}.hook_attn_out"], rtol=0, atol=1e-5)

        # --- residual identities ----------------------------------------------
        rp, ao, mo = ref[f"{pfx}.hook_resid_pre"], ref[f"{pfx}.hook_attn_out"], ref[f"{pfx}.hook_mlp_out"]
        if P["ln_mid"] is not None:
            torch.testing.assert_close(ref[f"{pfx}.hook_resid_mid"], rp + ao, rtol=0, atol=1e-5)
            torch.testing.assert_close(ref[f"{pfx}.hook_resid_post"], ref[f"{pfx}.hook_resid_mid"] + mo,
                                       rtol=0, atol=1e-5)
        else:
            torch.testing.assert_close(ref[f"{pfx}.hook_resid_post"], rp + ao + mo, rtol=0, atol=1e-5)

        # --- gradients --------------------------------------------------------
        grads[f"grad.{pfx}.hook_resid_pre"] = rec.acts[f"{pfx}.hook_resid_pre"].grad
        grads[f"grad.{pfx}.hook_resid_post"] = rec.acts[f"{pfx}.hook_resid_post"].grad
        gz = z_flat.grad.view(BATCH, SEQ, HEADS, HEAD_DIM)
        grads[f"grad.{pfx}.attn.hook_z"] = gz
        grads[f"grad.{pfx}.mlp.hook_post"] = rec.acts[f"{pfx}.mlp.hook_post"].grad
        gp = pattern.grad
        grads[f"grad.{pfx}.attn.hook_pattern"] = gp
        # z = pattern @ v  =>  dM/dpattern[b,h,i,j] = sum_d dM/dz[b,i,h,d] v[b,j,h,d]
        torch.testing.assert_close(gp, torch.einsum("bihd,bhjd->bhij", gz, vh), rtol=0, atol=1e-5)

        # --- diagnostics: patterns must not be near-uniform -------------------
        causal_rows = pattern.detach()[:, :, 1:, :]
        n_allowed = allowed[1:].sum(-1).float()  # (s-1,)
        ent = -(causal_rows.clamp_min(1e-30).log() * causal_rows).sum(-1)
        diag[f"L{l} mean entropy / uniform entropy"] = (ent / n_allowed.log()).mean().item()
        diag[f"L{l} max attn weight (mean over rows)"] = causal_rows.max(-1).values.mean().item()

    ref["ln_final.hook_normalized"] = rec.acts["ln_final.hook_normalized"].detach()
    # final norm output -> lm_head reproduces the logits
    torch.testing.assert_close(
        model.get_output_embeddings()(ref["ln_final.hook_normalized"]).detach(), ref["logits"], rtol=0, atol=1e-5)
    if name != "gpt2":
        torch.testing.assert_close(ref["blocks.0.hook_resid_pre"], ref["hook_embed"], rtol=0, atol=0)
    else:
        torch.testing.assert_close(ref["blocks.0.hook_resid_pre"], ref["hook_embed"] + ref["hook_pos_embed"],
                                   rtol=0, atol=1e-6)
    torch.testing.assert_close(grads["grad.hook_embed"], grads["grad.blocks.0.hook_resid_pre"], rtol=0, atol=1e-6)

    for k_, g in grads.items():
        assert g is not None, f"{name}: missing gradient {k_}"
        assert torch.isfinite(g).all(), k_
    ref.update(grads)
    ref = {k_: (v_.detach().to(torch.float32).clone() if v_.dtype.is_floating_point else v_.clone())
           for k_, v_ in ref.items()}

    diag["logits std"] = ref["logits"].std().item()
    diag["M"] = M.item()
    diag["grad.hook_embed abs max"] = ref["grad.hook_embed"].abs().max().item()

    # --- write ------------------------------------------------------------------
    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model.save_pretrained(d)  # transformers 5 always writes safetensors
    for f in os.listdir(d):
        if f not in ("config.json", "model.safetensors", "generation_config.json"):
            os.remove(os.path.join(d, f))
    assert os.path.exists(os.path.join(d, "model.safetensors"))
    save_file(ref, os.path.join(d, "reference.safetensors"),
              # one metadata key only: safetensors writes metadata in hash order, so several keys
              # would make the file bytes differ from run to run
              metadata={"info": json.dumps({
                  "family": name, "metric": f"sum_b logits[b,-1,{METRIC_A}] - logits[b,-1,{METRIC_B}]",
                  "transformers": transformers.__version__, "torch": torch.__version__}, sort_keys=True)})

    # --- reload the written checkpoint and compare ------------------------------
    re = spec["cls"].from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    re.eval()
    with torch.no_grad():
        lg = re(input_ids=input_ids, use_cache=False).logits
    torch.testing.assert_close(lg, ref["logits"], rtol=0, atol=1e-5)
    back = load_file(os.path.join(d, "reference.safetensors"))
    assert torch.isneginf(back["blocks.0.attn.hook_attn_scores"]).any(), "-inf not stored"
    return ref, diag


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "parity"))
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_grad_enabled(True)
    os.makedirs(args.out, exist_ok=True)
    summary = {}
    for name, spec in FAMILIES.items():
        if args.only and name not in args.only:
            continue
        ref, diag = build_family(name, spec, args.out)
        summary[name] = diag
        print(f"== {name}: {len(ref)} tensors")
        for k, v in diag.items():
            print(f"   {k}: {v:.4f}")
    print(f"transformers {transformers.__version__}  torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
