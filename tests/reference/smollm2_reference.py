#!/usr/bin/env python3
"""Reference next-token numbers for SmolLM2-135M-Instruct (GGUF Q4_1) from Hugging Face transformers.

The GGUF file comes from `bash scripts/fetch-smollm2.sh` (it prints the path).  transformers loads
GGUF by de-quantising every tensor to float32 (via the `gguf` package) into a plain
LlamaForCausalLM, so these are the numbers of the *de-quantised* weights run in float32
(eager attention), not of a quantised matmul.

Writes tests/fixtures/smollm2/reference.json.

Run:  python tests/reference/smollm2_reference.py [--gguf PATH] [--out PATH]
"""

import argparse
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

PROMPTS = [
    "The capital of France is",
    "When Mary and John went to the store, John gave a drink to",
]
BOS_PROMPT = "Once upon a time"
NAMED = [" Paris", " Mary", " John"]
TOPK = 10


def locate_gguf(arg):
    if arg:
        return arg
    out = subprocess.run(["bash", os.path.join(REPO, "scripts", "fetch-smollm2.sh")],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def version(pkg):
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def last_logits(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], dtype=torch.int64), use_cache=False)
    return out.logits[0, -1].float()


def topk_record(tok, logits):
    logprobs = torch.log_softmax(logits, dim=-1)
    v, i = logits.topk(TOPK)
    ids = i.tolist()
    return {
        "top10_ids": ids,
        "top10_tokens": tok.convert_ids_to_tokens(ids),  # raw vocab strings (byte-level BPE, 'Ġ' = space)
        "top10_strings": [tok.decode([t]) for t in ids],  # decoded text
        "top10_logits": [float(x) for x in v.tolist()],
        "top10_logprobs": [float(logprobs[t]) for t in ids],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=None, help="path of SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "smollm2", "reference.json"))
    args = ap.parse_args()

    path = locate_gguf(args.gguf)
    d, name = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())

    named_ids = {}
    for s in NAMED:
        ids = tok(s, add_special_tokens=False).input_ids
        assert len(ids) == 1, (s, ids)
        named_ids[s] = ids[0]

    bos = tok.bos_token_id
    result = {
        "model": "SmolLM2-135M-Instruct",
        "gguf_file": name,
        "loader": "transformers AutoModelForCausalLM/AutoTokenizer.from_pretrained(dir, gguf_file=name), "
                  "dtype float32, eager attention; weights de-quantised to float32 by transformers",
        "versions": {p: version(p) for p in ("transformers", "torch", "gguf", "tokenizers", "safetensors",
                                             "numpy", "accelerate")},
        "model_class": type(model).__name__,
        "config": {k: getattr(model.config, k, None) for k in (
            "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_parameters", "tie_word_embeddings",
            "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")},
        "tokenizer": {
            "class": type(tok).__name__,
            "bos_token": tok.bos_token, "bos_token_id": bos,
            "eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id,
            "add_bos_token": getattr(tok, "add_bos_token", None),
        },
        "named_token_ids": named_ids,
        "prompts": [],
    }

    for p in PROMPTS:
        ids = tok(p).input_ids  # default settings
        bos_added = bool(ids) and bos is not None and ids[0] == bos
        lg = last_logits(model, ids)
        rec = {
            "prompt": p,
            "input_ids": ids,
            "tokens": tok.convert_ids_to_tokens(ids),
            "bos_added_by_default": bos_added,
            **topk_record(tok, lg),
            "named_logits": {s: float(lg[i]) for s, i in named_ids.items()},
        }
        if "Mary" in p:
            rec["logit_diff_mary_minus_john"] = float(lg[named_ids[" Mary"]] - lg[named_ids[" John"]])
        # the same prompt with the BOS id prepended explicitly (not what the tokenizer does by default)
        ids_bos = ([bos] + ids) if not bos_added else ids
        lg_bos = last_logits(model, ids_bos)
        rec["with_bos"] = {
            "input_ids": ids_bos,
            **topk_record(tok, lg_bos),
            "named_logits": {s: float(lg_bos[i]) for s, i in named_ids.items()},
        }
        if "Mary" in p:
            rec["with_bos"]["logit_diff_mary_minus_john"] = float(
                lg_bos[named_ids[" Mary"]] - lg_bos[named_ids[" John"]])
        result["prompts"].append(rec)

    # third prompt: ids given directly = BOS id followed by the default tokenisation of the text
    text_ids = tok(BOS_PROMPT, add_special_tokens=False).input_ids
    ids = [bos] + text_ids
    lg = last_logits(model, ids)
    result["bos_prompt"] = {
        "prompt": BOS_PROMPT,
        "note": "input_ids = [bos_token_id] + tokenizer(prompt, add_special_tokens=False).input_ids",
        "input_ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
        **topk_record(tok, lg),
    }

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    # put flat lists (ids, logits, token strings) on one line each
    text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda m: "[" + re.sub(r",\s+", ", ", m.group(1).strip()) + "]", text)
    assert json.loads(text) == result
    with open(args.out, "w") as f:
        f.write(text + "\n")
    print(json.dumps({
        "france_top": result["prompts"][0]["top10_strings"][0],
        "mary_minus_john": result["prompts"][1]["logit_diff_mary_minus_john"],
        "ids": [r["input_ids"] for r in result["prompts"]] + [ids],
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
