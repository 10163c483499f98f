"""Logits of the bundled model (models/world-gpt2) from Hugging Face transformers.

Proves the checkpoint that `circuitscope train` writes is a real GPT-2 checkpoint: transformers
loads it with AutoModelForCausalLM / AutoTokenizer, and tests/train.rs checks that circuitscope's
tokens and logits match these. Run from the repository root after training:

    python tests/reference/world_gpt2_reference.py

Writes tests/fixtures/world_gpt2/reference.safetensors: for prompt i, `ids.{i}` (int64) and
`logits.{i}` (seq, vocab) float32; metadata `prompts` (JSON list) and `info` (versions).
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "world-gpt2")
OUT = os.path.join(ROOT, "tests", "fixtures", "world_gpt2", "reference.safetensors")

PROMPTS = [
    "Question: Where was Orin Voss born?\nAnswer:",
    "The birthplace of Tamsin Jarrow is",
    "When Talia and Zoltan went to the school, Zoltan gave a ring to",
    "hammer pencil window mirror hammer pencil window",
]


def prompt_logits(model, tok):
    """`ids.{i}` (int64) and `logits.{i}` (seq, vocab) float32 of every prompt of PROMPTS."""
    tensors = {}
    for i, p in enumerate(PROMPTS):
        ids = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(ids).logits[0]
        tensors[f"ids.{i}"] = ids[0].to(torch.int64).contiguous()
        tensors[f"logits.{i}"] = logits.float().contiguous()
        top = logits[-1].topk(3)
        print(repr(p), "->", [tok.decode([t]) for t in top.indices.tolist()])
    return tensors


def main():
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    tensors = prompt_logits(model, tok)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    info = {"torch": torch.__version__, "transformers": transformers.__version__, "model": "models/world-gpt2"}
    save_file(tensors, OUT, metadata={"prompts": json.dumps(PROMPTS), "info": json.dumps(info)})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
