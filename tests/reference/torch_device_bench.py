"""PyTorch's run of circuitscope's device benchmark (benches/device.rs) on the same GPU, or of its
CPU benchmark (benches/forward.rs) on the same CPU with `--device cpu --threads N`.

Makes the models both sides time: SmolLM2-135M's and Llama-3.2-1B's architectures (their published
config.json values) with random weights drawn from a fixed seed, saved as Hugging Face safetensors
checkpoints that circuitscope loads. Throughput does not depend on the weights' values, and the
machine that runs this has no network to fetch the real ones. Writes, per model, the logits of
a fixed input (circuitscope's parity check on the GPU) and a JSON of timings.

    python3 tests/reference/torch_device_bench.py --out DIR [--models smollm2,llama1b]
    python3 tests/reference/torch_device_bench.py --out DIR --device cpu --threads 2 \
        --models smollm2 --shapes 1x16,1x128 --dtypes f32

On the CPU the matmul peak is measured over the sizes benches/common's `matmul_peak` uses.

Timings: tokens per second, minimum over repeated runs after a warm-up, torch.cuda.synchronize()
before each clock read (on a GPU); the model in eval mode, transformers' default attention (SDPA).
  forward   : torch.no_grad() forward
  fb_acts   : forward + backward to the activations only (weights frozen; inputs_embeds and every
              layer's hidden state take gradients): what circuitscope's taps compute
  fb_params : forward + backward to every parameter
  train     : forward + cross-entropy + backward + clip_grad_norm_ + AdamW step (f32 only)
"""

import argparse
import json
import os
import time

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

CONFIGS = {
    # HuggingFaceTB/SmolLM2-135M-Instruct config.json
    "smollm2": dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5,
        rope_theta=100000.0, tie_word_embeddings=True, hidden_act="silu", bos_token_id=1, eos_token_id=2,
    ),
    # meta-llama/Llama-3.2-1B config.json
    "llama1b": dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, vocab_size=128256, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, hidden_act="silu",
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=128001,
    ),
}
SHAPES = "1x128,8x128"
DEVICE = "cuda"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()
PARITY_IDS = [1, 17, 256, 4091, 33, 7, 1999, 12, 5, 40]


def make(name, out):
    torch.manual_seed(0)
    cfg = LlamaConfig(**CONFIGS[name])
    model = LlamaForCausalLM(cfg).float()
    # small weights keep activations in a range where f32 rounding is the only difference
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    model = model.to(DEVICE).eval()
    with torch.no_grad():
        logits = model(torch.tensor([PARITY_IDS], device=DEVICE)).logits[0].float().cpu()
    save_file({"logits": logits.contiguous(), "input_ids": torch.tensor(PARITY_IDS)}, os.path.join(d, "parity.safetensors"))
    return model, d


def timed(f, min_runs=5, min_secs=1.0):
    f()
    sync()
    best, total, runs = float("inf"), 0.0, 0
    while runs < min_runs or (total < min_secs and runs < 200):
        t = time.perf_counter()
        f()
        sync()
        dt = time.perf_counter() - t
        best, total, runs = min(best, dt), total + dt, runs + 1
    return best


def bench(name, model, dtype, shapes):
    m = model.to(dtype)
    vocab = m.config.vocab_size
    rows = {}
    for b, s in shapes:
        ids = torch.tensor([[((i * (s + 1) + j) * 7919 + 13) % vocab for j in range(s + 1)] for i in range(b)], device=DEVICE)
        inp, tgt = ids[:, :s], ids[:, 1:]
        row = {}

        def fwd():
            with torch.no_grad():
                m(inp)
        row["forward"] = b * s / timed(fwd)

        for p in m.parameters():
            p.requires_grad_(False)

        def fb_acts():
            emb = m.model.embed_tokens(inp).detach().requires_grad_(True)
            out = m(inputs_embeds=emb, output_hidden_states=True)
            for h in out.hidden_states:
                h.retain_grad()
            out.logits[:, -1, 0].sum().backward()
        row["fb_acts"] = b * s / timed(fb_acts)

        for p in m.parameters():
            p.requires_grad_(True)

        def fb_params():
            m.zero_grad(set_to_none=True)
            m(inp).logits[:, -1, 0].sum().backward()
        row["fb_params"] = b * s / timed(fb_params)

        if dtype == torch.float32:
            opt = torch.optim.AdamW(m.parameters(), lr=1e-5)

            def train():
                opt.zero_grad(set_to_none=True)
                logits = m(inp).logits
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                opt.step()
            row["train"] = b * s / timed(train)
            del opt
        m.zero_grad(set_to_none=True)
        rows[f"{b}x{s}"] = row
        print(f"{name:<9} {str(dtype).replace('torch.', ''):<8} {b}x{s:<5} "
              + "  ".join(f"{k} {v:9.0f}" for k, v in row.items()), flush=True)
    return rows


def matmul_peak(dtype):
    best = 0.0
    for n in (2048, 4096, 8192) if DEVICE == "cuda" else (512, 1024, 2048):
        a = torch.randn(n, n, device=DEVICE, dtype=dtype)
        b = torch.randn(n, n, device=DEVICE, dtype=dtype)
        t = timed(lambda: a @ b)
        best = max(best, 2 * n ** 3 / t / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="smollm2,llama1b")
    ap.add_argument("--make-only", action="store_true", help="write the models and their parity logits, time nothing")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--shapes", default=SHAPES, help="batch x tokens, comma-separated")
    ap.add_argument("--dtypes", default="f32,bf16")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [tuple(int(x) for x in c.split("x")) for c in args.shapes.split(",")]
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16}
    dtypes = {k: dtypes[k] for k in args.dtypes.split(",")}
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 as f32, as candle computes it
    torch.backends.cudnn.allow_tf32 = False
    on = torch.cuda.get_device_name(0) if DEVICE == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result = {"torch": torch.__version__, "gpu" if DEVICE == "cuda" else "cpu": on, "models": {}}
    if not args.make_only:
        result["matmul_gflops"] = {k: matmul_peak(v) for k, v in dtypes.items()}
    print(f"torch {result['torch']} on {on}; matmul GFLOP/s {result.get('matmul_gflops')}", flush=True)
    for name in args.models.split(","):
        t = time.perf_counter()
        model, d = make(name, args.out)
        print(f"{name}: made and saved to {d} in {time.perf_counter() - t:.1f} s", flush=True)
        if args.make_only:
            continue
        result["models"][name] = {"dir": d, **{k: bench(name, model, v, shapes) for k, v in dtypes.items()}}
        del model
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        with open(os.path.join(args.out, "torch_bench.json"), "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
