#!/usr/bin/env python3
"""Independent PyTorch reference for edge attribution (EAP, EAP-IG, exact patching) on the tiny
Hugging Face checkpoints in tests/fixtures/parity/<family>/.

Nothing here uses circuitscope.  The script loads the HF model (eager attention, float32), copies
its parameters to float64, and runs its OWN functional forward pass that materialises every
reader input of the circuit graph (ALGORITHMS.md §1) as a separate tensor:

  * each attention head h of layer l gets three private copies of the residual stream, one for its
    query, one for its key and one for its value path; each copy goes through the layer norm on
    its own and is projected with that head's slice of W_Q / W_K / W_V (GQA: the kv head
    h // (H / n_kv) that query head h uses);
  * the MLP of layer l reads its own copy (GPT-2 / Llama: resid_mid; GPT-NeoX, parallel residual:
    resid_pre, the same stream the heads read);
  * the final norm reads the final residual stream (reader `logits`).

Each reader input is `in_v = (sum of writer outputs before v, plus biases) + patch_v + eps_v`,
with `eps_v` a zero tensor that requires grad, so `eps_v.grad == dL/d in_v` for that reader alone.
Writers (`input`, each head's z_h @ W_O[h] without the output bias, each MLP's full output) get
the same treatment (`z_u + weps_u`) for node-level gradients.

The forward pass is asserted against `model(input_ids).logits` (float32 HF model: 1e-5; a float64
copy of the HF model: 1e-10), and the gradients at the writers are asserted against the gradients
a real torch backward through the HF model gives at `inputs_embeds`, at each attention output
projection's output and at each MLP's output.

Run:  python tests/reference/eap_ig_reference.py [--only gpt2 llama gpt_neox] [--out DIR]
Writes tests/fixtures/eap_ig/<family>/reference.safetensors (keys: see tests/reference/README.md).
"""

import argparse
import copy
import json
import math
import os
import sys

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

N_ITEMS = 4
SEQ = 6
N_CHANGED = 2  # positions where corrupted differs from clean
DATA_SEED = 7
M_STEPS = 5
FAMILIES = ("gpt2", "llama", "gpt_neox")
DT = torch.float64

LOSS_DEF = "L_i = -(logits[i, -1, answer_i] - logits[i, -1, distractor_i]); scores are means over items i"


def f64(t):
    return t.detach().to(DT).clone()


# --------------------------------------------------------------------------------------------
# Family adapters: pull the parameters out of the HF module tree into a uniform per-layer layout
#   W_Q, W_K, W_V: (H, D, dh)   (W_K / W_V already expanded to query heads for GQA)
#   b_Q, b_K, b_V: (H, dh) or None
#   W_O: (H, dh, D), b_O: (D,) or None
# and give closures for the norms, the MLP and the unembedding.
# --------------------------------------------------------------------------------------------


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rope_tables(theta, rot_dims, seq):
    inv = 1.0 / (theta ** (torch.arange(0, rot_dims, 2, dtype=DT) / rot_dims))
    ang = torch.arange(seq, dtype=DT)[:, None] * inv[None, :]  # (S, rot/2)
    ang = torch.cat([ang, ang], dim=-1)  # (S, rot)
    return inv, ang.cos(), ang.sin()


def apply_rope(x, cos, sin, rot_dims):
    """x (..., S, dh): rotate-half over the first rot_dims dims of each head."""
    xr, xp = x[..., :rot_dims], x[..., rot_dims:]
    half = rot_dims // 2
    rot = torch.cat([-xr[..., half:], xr[..., :half]], dim=-1)
    return torch.cat([xr * cos + rot * sin, xp], dim=-1)


def rope_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(getattr(cfg, "rope_theta", getattr(cfg, "rotary_emb_base", 10000.0)))


def partial_rotary(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "partial_rotary_factor" in rp:
        return float(rp["partial_rotary_factor"])
    return float(getattr(cfg, "partial_rotary_factor", getattr(cfg, "rotary_pct", 1.0)))


class Fam:
    """Uniform functional view of one HF checkpoint, float64."""

    def __init__(self, family, model):
        self.family = family
        cfg = model.config
        self.cfg = cfg
        self.D = cfg.hidden_size
        self.H = cfg.num_attention_heads
        self.L = cfg.num_hidden_layers
        self.V = cfg.vocab_size
        self.dh = self.D // self.H
        self.layers = []
        H, D, dh = self.H, self.D, self.dh
        if family == "gpt2":
            tr = model.transformer
            self.parallel = False
            self.rot_dims = 0
            self.wte = f64(tr.wte.weight)
            self.wpe = f64(tr.wpe.weight)
            eps = cfg.layer_norm_epsilon
            for blk in tr.h:
                Wqkv = f64(blk.attn.c_attn.weight)  # Conv1D: (D, 3D), y = x @ W + b
                bqkv = f64(blk.attn.c_attn.bias)
                Wq, Wk, Wv = Wqkv.split(D, dim=1)
                bq, bk, bv = bqkv.split(D)
                heads = lambda W: W.view(D, H, dh).permute(1, 0, 2).contiguous()  # noqa: E731
                ln1 = (f64(blk.ln_1.weight), f64(blk.ln_1.bias))
                ln2 = (f64(blk.ln_2.weight), f64(blk.ln_2.bias))
                fc_w, fc_b = f64(blk.mlp.c_fc.weight), f64(blk.mlp.c_fc.bias)
                pr_w, pr_b = f64(blk.mlp.c_proj.weight), f64(blk.mlp.c_proj.bias)
                self.layers.append(dict(
                    W_Q=heads(Wq), W_K=heads(Wk), W_V=heads(Wv),
                    b_Q=bq.view(H, dh), b_K=bk.view(H, dh), b_V=bv.view(H, dh),
                    W_O=f64(blk.attn.c_proj.weight).view(H, dh, D), b_O=f64(blk.attn.c_proj.bias),
                    ln_attn=lambda x, p=ln1, e=eps: layer_norm(x, p[0], p[1], e),
                    ln_mlp=lambda x, p=ln2, e=eps: layer_norm(x, p[0], p[1], e),
                    mlp=lambda x, a=fc_w, b=fc_b, c=pr_w, d=pr_b: gelu_new(x @ a + b) @ c + d,
                ))
            lnf = (f64(tr.ln_f.weight), f64(tr.ln_f.bias))
            self.ln_final = lambda x: layer_norm(x, lnf[0], lnf[1], eps)
            W_U = f64(model.lm_head.weight)  # (V, D), tied to wte
            self.unembed = lambda x: x @ W_U.T
        elif family == "llama":
            base = model.model
            self.parallel = False
            self.wte = f64(base.embed_tokens.weight)
            self.wpe = None
            n_kv = cfg.num_key_value_heads
            rep = H // n_kv
            dh = getattr(cfg, "head_dim", None) or D // H
            self.dh = dh
            self.rot_dims = dh
            eps = cfg.rms_norm_eps
            inv, self.cos, self.sin = rope_tables(rope_theta(cfg), dh, SEQ)
            torch.testing.assert_close(inv, base.rotary_emb.inv_freq.to(DT), rtol=1e-6, atol=0)
            for lay in base.layers:
                a = lay.self_attn
                # nn.Linear: weight (out, in), y = x @ W.T + b
                Wq = f64(a.q_proj.weight).T.reshape(D, H, dh).permute(1, 0, 2)
                Wk = f64(a.k_proj.weight).T.reshape(D, n_kv, dh).permute(1, 0, 2)
                Wv = f64(a.v_proj.weight).T.reshape(D, n_kv, dh).permute(1, 0, 2)
                bias = lambda lin, n: None if lin.bias is None else f64(lin.bias).view(n, dh)  # noqa: E731
                bk, bv = bias(a.k_proj, n_kv), bias(a.v_proj, n_kv)
                # GQA "ungrouped": query head h uses kv head h // rep
                Wk, Wv = Wk.repeat_interleave(rep, 0), Wv.repeat_interleave(rep, 0)
                bk = None if bk is None else bk.repeat_interleave(rep, 0)
                bv = None if bv is None else bv.repeat_interleave(rep, 0)
                w1, w2 = f64(lay.input_layernorm.weight), f64(lay.post_attention_layernorm.weight)
                g, u, d_ = f64(lay.mlp.gate_proj.weight), f64(lay.mlp.up_proj.weight), f64(lay.mlp.down_proj.weight)
                assert lay.mlp.gate_proj.bias is None and lay.mlp.down_proj.bias is None
                self.layers.append(dict(
                    W_Q=Wq.contiguous(), W_K=Wk.contiguous(), W_V=Wv.contiguous(),
                    b_Q=bias(a.q_proj, H), b_K=bk, b_V=bv,
                    W_O=f64(a.o_proj.weight).T.reshape(H, dh, D).contiguous(),
                    b_O=None if a.o_proj.bias is None else f64(a.o_proj.bias),
                    ln_attn=lambda x, w=w1, e=eps: rms_norm(x, w, e),
                    ln_mlp=lambda x, w=w2, e=eps: rms_norm(x, w, e),
                    mlp=lambda x, g=g, u=u, d=d_: (torch.nn.functional.silu(x @ g.T) * (x @ u.T)) @ d.T,
                ))
            wf = f64(base.norm.weight)
            self.ln_final = lambda x: rms_norm(x, wf, eps)
            W_U = f64(model.lm_head.weight)
            self.unembed = lambda x: x @ W_U.T
        elif family == "gpt_neox":
            base = model.gpt_neox
            assert cfg.use_parallel_residual
            self.parallel = True
            self.wte = f64(base.embed_in.weight)
            self.wpe = None
            eps = cfg.layer_norm_eps
            self.rot_dims = int(dh * partial_rotary(cfg))
            inv, self.cos, self.sin = rope_tables(rope_theta(cfg), self.rot_dims, SEQ)
            torch.testing.assert_close(inv, base.rotary_emb.inv_freq.to(DT), rtol=1e-6, atol=0)
            for lay in base.layers:
                at = lay.attention
                Wqkv = f64(at.query_key_value.weight).T.reshape(D, H, 3, dh)  # per head [q|k|v]
                bqkv = f64(at.query_key_value.bias).view(H, 3, dh)
                hw = lambda i: Wqkv[:, :, i, :].permute(1, 0, 2).contiguous()  # noqa: E731
                ln1 = (f64(lay.input_layernorm.weight), f64(lay.input_layernorm.bias))
                ln2 = (f64(lay.post_attention_layernorm.weight), f64(lay.post_attention_layernorm.bias))
                a_w, a_b = f64(lay.mlp.dense_h_to_4h.weight), f64(lay.mlp.dense_h_to_4h.bias)
                c_w, c_b = f64(lay.mlp.dense_4h_to_h.weight), f64(lay.mlp.dense_4h_to_h.bias)
                assert cfg.hidden_act == "gelu"
                self.layers.append(dict(
                    W_Q=hw(0), W_K=hw(1), W_V=hw(2),
                    b_Q=bqkv[:, 0].contiguous(), b_K=bqkv[:, 1].contiguous(), b_V=bqkv[:, 2].contiguous(),
                    W_O=f64(at.dense.weight).T.reshape(H, dh, D).contiguous(), b_O=f64(at.dense.bias),
                    ln_attn=lambda x, p=ln1, e=eps: layer_norm(x, p[0], p[1], e),
                    ln_mlp=lambda x, p=ln2, e=eps: layer_norm(x, p[0], p[1], e),
                    mlp=lambda x, a=a_w, b=a_b, c=c_w, d=c_b: gelu_erf(x @ a.T + b) @ c.T + d,
                ))
            lnf = (f64(base.final_layer_norm.weight), f64(base.final_layer_norm.bias))
            self.ln_final = lambda x: layer_norm(x, lnf[0], lnf[1], eps)
            W_U = f64(model.get_output_embeddings().weight)
            self.unembed = lambda x: x @ W_U.T
        else:
            raise ValueError(family)

        # ---- graph indexing (ALGORITHMS.md §1) ----
        L, H = self.L, self.H
        self.n_fwd = 1 + L * (H + 1)
        self.n_bwd = L * (3 * H + 1) + 1
        self.edge_mask = torch.zeros(self.n_fwd, self.n_bwd, dtype=torch.bool)
        for v in range(self.n_bwd):
            for u in range(self.n_fwd):
                self.edge_mask[u, v] = self.is_edge(u, v)

    # writer (forward) indices
    def fwd_head(self, l, h):
        return 1 + l * (self.H + 1) + h

    def fwd_mlp(self, l):
        return 1 + l * (self.H + 1) + self.H

    # reader (backward) indices; qkv in {0, 1, 2}
    def bwd_head(self, l, qkv, h):
        return l * (3 * self.H + 1) + qkv * self.H + h

    def bwd_mlp(self, l):
        return l * (3 * self.H + 1) + 3 * self.H

    def bwd_logits(self):
        return self.L * (3 * self.H + 1)

    def writer_layer(self, u):
        """(layer, is_mlp) of writer u; input -> (-1, False)."""
        if u == 0:
            return -1, False
        l, r = divmod(u - 1, self.H + 1)
        return l, r == self.H

    def is_edge(self, u, v):
        wl, w_mlp = self.writer_layer(u)
        if v == self.bwd_logits():
            return True
        rl, r = divmod(v, 3 * self.H + 1)
        r_mlp = r == 3 * self.H
        if wl < rl:
            return True
        if wl == rl and r_mlp and not w_mlp:  # m{l} reads the heads of layer l
            return not self.parallel
        return False

    def fwd_names(self):
        names = ["input"]
        for l in range(self.L):
            names += [f"a{l}.h{h}" for h in range(self.H)] + [f"m{l}"]
        return names

    def bwd_names(self):
        names = []
        for l in range(self.L):
            for t in "qkv":
                names += [f"a{l}.h{h}<{t}>" for h in range(self.H)]
            names.append(f"m{l}")
        return names + ["logits"]

    # ------------------------------------------------------------------------------------------
    # the forward pass
    # ------------------------------------------------------------------------------------------
    def embed(self, ids):
        """Token embeddings only (what EAP-IG-inputs interpolates)."""
        return self.wte[ids]

    def pos(self, n):
        if self.wpe is None:
            return None
        return self.wpe[:SEQ].unsqueeze(0).expand(n, SEQ, self.D)

    def attention(self, lay, x3):
        """x3: (3, H, N, S, D) normalised per-head q/k/v inputs -> z (H, N, S, dh)."""
        q = torch.einsum("hnsd,hde->hnse", x3[0], lay["W_Q"])
        k = torch.einsum("hnsd,hde->hnse", x3[1], lay["W_K"])
        v = torch.einsum("hnsd,hde->hnse", x3[2], lay["W_V"])
        if lay["b_Q"] is not None:
            q = q + lay["b_Q"][:, None, None, :]
        if lay["b_K"] is not None:
            k = k + lay["b_K"][:, None, None, :]
        if lay["b_V"] is not None:
            v = v + lay["b_V"][:, None, None, :]
        if self.rot_dims:
            q = apply_rope(q, self.cos, self.sin, self.rot_dims)
            k = apply_rope(k, self.cos, self.sin, self.rot_dims)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        causal = torch.ones(SEQ, SEQ, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    def run(self, tok_emb, *, reader_eps=None, writer_eps=None, override=None, patch=None,
            record=False):
        """One forward pass.

        tok_emb     (N, S, D) token embeddings; the `input` writer outputs tok_emb (+ positions).
        reader_eps  (n_bwd, N, S, D) added to every reader input (requires grad -> dL/d in_v).
        writer_eps  (n_fwd, N, S, D) added to every writer output (requires grad -> dL/d z_u).
        override    dict u -> tensor: writer u outputs this (constant) tensor instead.
        patch       (mask (n_fwd, n_bwd) bool, zc (n_fwd, N, S, D) corrupted writer outputs):
                    in_v += sum_{u: mask[u, v]} (zc_u - z_u), z_u = u's output IN THIS RUN
                    (EAP-IG's evaluate_graph convention; for a single edge the same as adding the
                    precomputed clean-vs-corrupted difference, since u is upstream of v).
        Returns logits (N, S, V) and, if record, the writer outputs (n_fwd, N, S, D).
        """
        n = tok_emb.shape[0]
        outs = [None] * self.n_fwd

        def emit(u, z):
            if override is not None and u in override:
                z = override[u]
            if writer_eps is not None:
                z = z + writer_eps[u]
            outs[u] = z
            return z

        def reader_in(v, base):
            x = base
            if patch is not None:
                mask, zc = patch
                for u in range(self.n_fwd):
                    if mask[u, v]:
                        assert outs[u] is not None, (u, v)
                        x = x + (zc[u] - outs[u])
            if reader_eps is not None:
                x = x + reader_eps[v]
            return x

        z0 = tok_emb
        p = self.pos(n)
        if p is not None:
            z0 = z0 + p
        resid = emit(0, z0)
        for l, lay in enumerate(self.layers):
            H = self.H
            x3 = torch.stack([
                torch.stack([reader_in(self.bwd_head(l, t, h), resid) for h in range(H)])
                for t in range(3)
            ])  # (3, H, N, S, D)
            z = self.attention(lay, lay["ln_attn"](x3))  # (H, N, S, dh)
            res = torch.einsum("hnse,hed->hnsd", z, lay["W_O"])  # per-head results
            attn_sum = 0
            for h in range(H):
                attn_sum = attn_sum + emit(self.fwd_head(l, h), res[h])
            if lay["b_O"] is not None:
                attn_sum = attn_sum + lay["b_O"]
            if self.parallel:
                m_in = reader_in(self.bwd_mlp(l), resid)
                mo = emit(self.fwd_mlp(l), lay["mlp"](lay["ln_mlp"](m_in)))
                resid = resid + attn_sum + mo
            else:
                mid = resid + attn_sum
                m_in = reader_in(self.bwd_mlp(l), mid)
                mo = emit(self.fwd_mlp(l), lay["mlp"](lay["ln_mlp"](m_in)))
                resid = mid + mo
        fin = reader_in(self.bwd_logits(), resid)
        logits = self.unembed(self.ln_final(fin))
        if record:
            return logits, torch.stack(outs)
        return logits


def item_loss(logits, ans, dis):
    """(N,) per item: -(logit[answer] - logit[distractor]) at the last position."""
    last = logits[:, -1, :]
    idx = torch.arange(last.shape[0])
    return -(last[idx, ans] - last[idx, dis])


def make_items(V):
    g = torch.Generator().manual_seed(DATA_SEED)
    clean = torch.randint(0, V, (N_ITEMS, SEQ), generator=g, dtype=torch.int64)
    corr = clean.clone()
    for i in range(N_ITEMS):
        pos = torch.randperm(SEQ, generator=g)[:N_CHANGED]
        shift = torch.randint(1, V, (N_CHANGED,), generator=g, dtype=torch.int64)
        corr[i, pos] = (clean[i, pos] + shift) % V  # always a different token
    ans = torch.randint(0, V, (N_ITEMS,), generator=g, dtype=torch.int64)
    dis = (ans + torch.randint(1, V, (N_ITEMS,), generator=g, dtype=torch.int64)) % V
    assert ((clean != corr).sum(1) == N_CHANGED).all()
    assert (ans != dis).all()
    return clean, corr, ans, dis


# --------------------------------------------------------------------------------------------
# checks against the HF model itself
# --------------------------------------------------------------------------------------------


def check_against_hf(fam, model, ids, ans, dis):
    with torch.no_grad():
        hf32 = model(input_ids=ids, use_cache=False).logits
        m64 = copy.deepcopy(model).to(DT)
        hf64 = m64(input_ids=ids, use_cache=False).logits
        mine = fam.run(fam.embed(ids))
    torch.testing.assert_close(mine, hf32.to(DT), rtol=0, atol=1e-5)
    # HF's Llama RMSNorm and the rotary tables of Llama / GPT-NeoX are computed in float32 even in a
    # float64 model, so only GPT-2's float64 HF model is float64 throughout.
    tol64 = dict(rtol=0, atol=1e-10) if fam.family == "gpt2" else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mine, hf64, **tol64)
    fwd_err32 = (mine - hf32.to(DT)).abs().max().item()
    fwd_err64 = (mine - hf64).abs().max().item()

    # gradients: real backward through the float64 HF model, hooked at module outputs
    kept = {}

    def keep(name):
        def hook(mod, inp, out):
            o = out[0] if isinstance(out, tuple) else out
            o.retain_grad()
            kept[name] = o
        return hook

    def keep_in(name):
        # give the norm its own copy of its input, so .grad is the gradient through this norm only
        def hook(mod, args):
            x = args[0].clone()
            x.retain_grad()
            kept[name] = x
            return (x,) + tuple(args[1:])
        return hook

    if fam.family == "gpt2":
        layers = m64.transformer.h
        o_mods = [b.attn.c_proj for b in layers]
        mlp_mods = [b.mlp for b in layers]
        emb_mod = m64.transformer.wte
        ln_a, ln_m, ln_f = [b.ln_1 for b in layers], [b.ln_2 for b in layers], m64.transformer.ln_f
    elif fam.family == "llama":
        layers = m64.model.layers
        o_mods = [b.self_attn.o_proj for b in layers]
        mlp_mods = [b.mlp for b in layers]
        emb_mod = m64.model.embed_tokens
        ln_a, ln_m = [b.input_layernorm for b in layers], [b.post_attention_layernorm for b in layers]
        ln_f = m64.model.norm
    else:
        layers = m64.gpt_neox.layers
        o_mods = [b.attention.dense for b in layers]
        mlp_mods = [b.mlp for b in layers]
        emb_mod = m64.gpt_neox.embed_in
        ln_a, ln_m = [b.input_layernorm for b in layers], [b.post_attention_layernorm for b in layers]
        ln_f = m64.gpt_neox.final_layer_norm
    handles = [emb_mod.register_forward_hook(keep("embed")), ln_f.register_forward_pre_hook(keep_in("ln_f_in"))]
    for l in range(fam.L):
        handles.append(o_mods[l].register_forward_hook(keep(f"attn_out{l}")))
        handles.append(mlp_mods[l].register_forward_hook(keep(f"mlp_out{l}")))
        handles.append(ln_a[l].register_forward_pre_hook(keep_in(f"ln_attn_in{l}")))
        handles.append(ln_m[l].register_forward_pre_hook(keep_in(f"ln_mlp_in{l}")))
    with torch.enable_grad():
        lg = m64(input_ids=ids, use_cache=False).logits
        item_loss(lg, ans, dis).sum().backward()
    for hd in handles:
        hd.remove()

    weps = torch.zeros(fam.n_fwd, *ids.shape, fam.D, dtype=DT, requires_grad=True)
    item_loss(fam.run(fam.embed(ids), writer_eps=weps), ans, dis).sum().backward()
    gw = weps.grad
    reps = torch.zeros(fam.n_bwd, *ids.shape, fam.D, dtype=DT, requires_grad=True)
    item_loss(fam.run(fam.embed(ids), reader_eps=reps), ans, dis).sum().backward()
    gr = reps.grad
    gerr = 0.0
    pairs = [(gw[0], kept["embed"].grad), (gr[fam.bwd_logits()], kept["ln_f_in"].grad)]
    for l in range(fam.L):
        pairs += [(gw[fam.fwd_head(l, h)], kept[f"attn_out{l}"].grad) for h in range(fam.H)]
        pairs.append((gw[fam.fwd_mlp(l)], kept[f"mlp_out{l}"].grad))
        # the 3H per-head q/k/v readers together are the attention norm's input; m{l} is the MLP norm's
        heads = [fam.bwd_head(l, t, h) for t in range(3) for h in range(fam.H)]
        pairs.append((gr[heads].sum(0), kept[f"ln_attn_in{l}"].grad))
        pairs.append((gr[fam.bwd_mlp(l)], kept[f"ln_mlp_in{l}"].grad))
    for a, b in pairs:
        torch.testing.assert_close(a, b, **tol64)
        gerr = max(gerr, (a - b).abs().max().item())
    return hf32, fwd_err32, fwd_err64, gerr


# --------------------------------------------------------------------------------------------
# attribution
# --------------------------------------------------------------------------------------------


def reader_grads(fam, tok_emb, ans, dis, override=None):
    """dL/d in_v for every reader v: (n_bwd, N, S, D)."""
    eps = torch.zeros(fam.n_bwd, *tok_emb.shape, dtype=DT, requires_grad=True)
    loss = item_loss(fam.run(tok_emb, reader_eps=eps, override=override), ans, dis).sum()
    (g,) = torch.autograd.grad(loss, eps)
    return g


def edge_scores(fam, delta, grads):
    """per-item scores (N, n_fwd, n_bwd) = sum_{s,d} delta_u * grad_v, non-edges zeroed."""
    s = torch.einsum("uisd,visd->iuv", delta, grads)
    return s * fam.edge_mask.to(DT)


def attribute(fam, clean, corr, ans, dis):
    e_clean, e_corr = fam.embed(clean), fam.embed(corr)
    with torch.no_grad():
        logits_clean, z_clean = fam.run(e_clean, record=True)
        logits_corr, z_corr = fam.run(e_corr, record=True)
    delta = z_corr - z_clean  # (n_fwd, N, S, D)
    # positions are identical on both sides: the input writer's delta is the token-embedding delta
    torch.testing.assert_close(delta[0], e_corr - e_clean, rtol=0, atol=1e-12)
    loss_clean = item_loss(logits_clean, ans, dis)
    loss_corr = item_loss(logits_corr, ans, dis)
    out = {}
    checks = {}

    # --- EAP -------------------------------------------------------------------------------
    g_clean = reader_grads(fam, e_clean, ans, dis)
    eap_ps = edge_scores(fam, delta, g_clean)
    out["eap"] = eap_ps.mean(0)
    out["eap_per_sample"] = eap_ps

    # --- node-level EAP: gradient at the writer's own output ---------------------------------
    weps = torch.zeros(fam.n_fwd, *e_clean.shape, dtype=DT, requires_grad=True)
    (gw,) = torch.autograd.grad(item_loss(fam.run(e_clean, writer_eps=weps), ans, dis).sum(), weps)
    node_ps = torch.einsum("uisd,uisd->iu", delta, gw)
    out["node_eap"] = node_ps.mean(0)
    # linearity: a writer's gradient is the sum of its readers' gradients
    torch.testing.assert_close(out["node_eap"], out["eap"].sum(1), rtol=0, atol=1e-10)
    checks["node_eap == eap.sum(readers)"] = True

    # --- EAP-IG inputs --------------------------------------------------------------------------
    def ig_inputs(m, offset=0.0):
        acc = torch.zeros_like(g_clean)
        for k in range(m):
            acc += reader_grads(fam, e_corr + ((k + offset) / m) * (e_clean - e_corr), ans, dis)
        return edge_scores(fam, delta, acc / m)

    igi_ps = ig_inputs(M_STEPS)
    out["eap_ig_inputs"] = igi_ps.mean(0)
    out["eap_ig_inputs_per_sample"] = igi_ps
    # completeness (a path-integral identity, checks the gradients): summed over the input's edges,
    # the integrated gradient along e' -> e equals L_i(corr) - L_i(clean) per item.  Checked with
    # a 64-step midpoint rule (error O(1/m^2)); the stored m = 5 left sum is much coarser.
    fine = ig_inputs(64, offset=0.5)
    lhs = fine[:, 0, :].sum(-1)  # (N,)
    rhs = loss_corr - loss_clean
    comp_err = ((lhs - rhs).abs().max() / rhs.abs().max()).item()
    assert comp_err < 1e-3, comp_err
    checks["ig-inputs completeness rel err (midpoint, m=64)"] = comp_err
    lhs5 = igi_ps[:, 0, :].sum(-1)
    checks["ig-inputs m=5 completeness rel err (diagnostic)"] = ((lhs5 - rhs).abs().max() / rhs.abs().max()).item()

    # --- EAP-IG activations -------------------------------------------------------------------
    groups = [[0]]
    for l in range(fam.L):
        groups.append([fam.fwd_head(l, h) for h in range(fam.H)])
        groups.append([fam.fwd_mlp(l)])
    assert len(groups) == 2 * fam.L + 1
    acc = torch.zeros(N_ITEMS, fam.n_fwd, fam.n_bwd, dtype=DT)
    for grp in groups:
        for k in range(1, M_STEPS + 1):
            a = k / M_STEPS
            ov = {u: (z_corr[u] + a * (z_clean[u] - z_corr[u])).detach() for u in grp}
            acc += edge_scores(fam, delta, reader_grads(fam, e_clean, ans, dis, override=ov))
    iga_ps = acc / (len(groups) * M_STEPS)
    out["eap_ig_activations"] = iga_ps.mean(0)
    out["eap_ig_activations_per_sample"] = iga_ps

    # --- clean-corrupted ----------------------------------------------------------------------
    g_corr = reader_grads(fam, e_corr, ans, dis)
    cc_ps = edge_scores(fam, delta, (g_clean + g_corr) / 2)
    out["clean_corrupted"] = cc_ps.mean(0)
    out["clean_corrupted_per_sample"] = cc_ps

    # --- patching sanity -----------------------------------------------------------------------
    with torch.no_grad():
        none = torch.zeros_like(fam.edge_mask)
        torch.testing.assert_close(fam.run(e_clean, patch=(none, z_corr)), logits_clean, rtol=0, atol=0)
        all_patched = fam.run(e_clean, patch=(fam.edge_mask, z_corr))
        torch.testing.assert_close(all_patched, logits_corr, rtol=0, atol=1e-10)
        checks["all edges patched == corrupted logits (1e-10)"] = (all_patched - logits_corr).abs().max().item()

        # --- exact: one edge at a time ------------------------------------------------------------
        ex_ps = torch.zeros(N_ITEMS, fam.n_fwd, fam.n_bwd, dtype=DT)
        n_edges = 0
        for u in range(fam.n_fwd):
            for v in range(fam.n_bwd):
                if not fam.edge_mask[u, v]:
                    continue
                one = torch.zeros_like(fam.edge_mask)
                one[u, v] = True
                ex_ps[:, u, v] = item_loss(fam.run(e_clean, patch=(one, z_corr)), ans, dis) - loss_clean
                n_edges += 1
        out["exact"] = ex_ps.mean(0)
        out["exact_per_sample"] = ex_ps
        # the single-edge patch adds the precomputed (clean-run) delta: check on a few edges
        for u, v in [(0, fam.bwd_logits()), (0, fam.bwd_head(fam.L - 1, 1, 0)), (1, fam.bwd_mlp(fam.L - 1))]:
            pe = torch.zeros(fam.n_bwd, *e_clean.shape, dtype=DT)
            pe[v] = delta[u]
            lp = item_loss(fam.run(e_clean, reader_eps=pe), ans, dis) - loss_clean
            torch.testing.assert_close(lp, ex_ps[:, u, v], rtol=0, atol=1e-12)
        # finite differences: exact patching with the delta scaled by +-h tends to EAP (checks every
        # per-reader gradient, q/k/v per head included, against the forward pass)
        hstep = 1e-5
        fd = torch.zeros(N_ITEMS, fam.n_fwd, fam.n_bwd, dtype=DT)
        for u in range(fam.n_fwd):
            for v in range(fam.n_bwd):
                if not fam.edge_mask[u, v]:
                    continue
                pe = torch.zeros(fam.n_bwd, *e_clean.shape, dtype=DT)
                pe[v] = hstep * delta[u]
                lp = item_loss(fam.run(e_clean, reader_eps=pe), ans, dis)
                lm = item_loss(fam.run(e_clean, reader_eps=-pe), ans, dis)
                fd[:, u, v] = (lp - lm) / (2 * hstep)
        fd_err = ((fd - eap_ps).abs().max() / eap_ps.abs().max()).item()
        assert fd_err < 1e-7, fd_err
        checks["EAP vs central finite difference of patching, rel err"] = fd_err
    checks["edges"] = n_edges
    assert n_edges == int(fam.edge_mask.sum())

    # how well the gradient methods approximate exact (diagnostic only)
    ex = out["exact"][fam.edge_mask]
    for k_ in ("eap", "eap_ig_inputs", "eap_ig_activations", "clean_corrupted"):
        sc = out[k_][fam.edge_mask]
        checks[f"corr({k_}, exact)"] = torch.corrcoef(torch.stack([sc, ex]))[0, 1].item()
    return out, dict(logits_clean=logits_clean, logits_corrupted=logits_corr,
                     loss_clean=loss_clean, loss_corrupted=loss_corr), checks


def build(family, parity_root, out_root):
    d = os.path.join(parity_root, family)
    model = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    fam = Fam(family, model)
    clean, corr, ans, dis = make_items(fam.V)
    hf_clean, e32, e64, gerr = check_against_hf(fam, model, clean, ans, dis)
    _, e32c, e64c, gerrc = check_against_hf(fam, model, corr, ans, dis)
    torch.set_grad_enabled(True)
    scores, extra, checks = attribute(fam, clean, corr, ans, dis)
    checks["max |mine - HF float32| logits (clean, corrupted)"] = (e32, e32c)
    checks["max |mine - HF float64| logits (clean, corrupted)"] = (e64, e64c)
    checks["max |mine - HF float64| writer + norm-input grads (clean, corrupted)"] = (gerr, gerrc)
    # float32 HF logits on clean agree with the stored (float64-computed) ones
    torch.testing.assert_close(extra["logits_clean"], hf_clean.to(DT), rtol=0, atol=1e-5)

    ref = {k: v.to(torch.float32).contiguous() for k, v in scores.items()}
    for k, v in extra.items():
        ref[k] = v.detach().to(torch.float32).contiguous()
    ref["clean_ids"] = clean
    ref["corrupted_ids"] = corr
    ref["answer"] = ans
    ref["distractor"] = dis
    ref["edge_mask"] = fam.edge_mask.to(torch.uint8)
    info = {
        "family": family,
        "m": M_STEPS,
        "n_items": N_ITEMS,
        "seq": SEQ,
        "data_seed": DATA_SEED,
        "loss": LOSS_DEF,
        "compute_dtype": "float64 (stored float32)",
        "n_layers": fam.L, "n_heads": fam.H, "n_fwd": fam.n_fwd, "n_bwd": fam.n_bwd,
        "n_edges": int(fam.edge_mask.sum()),
        "parallel_residual": fam.parallel,
        "fwd_names": fam.fwd_names(),
        "bwd_names": fam.bwd_names(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
    }
    os.makedirs(os.path.join(out_root, family), exist_ok=True)
    path = os.path.join(out_root, family, "reference.safetensors")
    save_file(ref, path, metadata={"info": json.dumps(info, sort_keys=True)})
    back = load_file(path)
    assert set(back) == set(ref)
    return path, ref, checks


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--parity", default=os.path.join(here, "..", "fixtures", "parity"))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "eap_ig"))
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    for family in FAMILIES:
        if args.only and family not in args.only:
            continue
        path, ref, checks = build(family, args.parity, args.out)
        print(f"== {family}: {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
        for k, v in checks.items():
            print(f"   {k}: {v}")
        for k in ("eap", "eap_ig_inputs", "eap_ig_activations", "clean_corrupted", "exact", "node_eap"):
            print(f"   max |{k}| = {ref[k].abs().max().item():.6g}")
        print(f"   loss_clean {ref['loss_clean'].tolist()}  loss_corrupted {ref['loss_corrupted'].tolist()}")
    print(f"torch {torch.__version__}  transformers {transformers.__version__}  "
          f"safetensors {safetensors.__version__}  numpy {numpy.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
