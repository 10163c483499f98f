"""The package's checks beyond the notebooks: arrays and shapes at the boundary, and bad input from
Python raising CircuitscopeError that names what was wrong and what was expected (never a crash).
Run by tests/notebooks.rs (plain asserts; `python python/tests/test_package.py` from the root)."""

import os
import tempfile

import numpy as np

import circuitscope as cs

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "models", "world-gpt2")
IOI = os.path.join(ROOT, "circuits", "world", "tasks", "ioi.jsonl")
FORGET = os.path.join(ROOT, "circuits", "world", "forget10.jsonl")


def raises(fn, *needles):
    try:
        fn()
    except cs.CircuitscopeError as e:
        msg = str(e)
        for n in needles:
            assert n in msg, f"the error {msg!r} does not name {n!r}"
        return msg
    raise AssertionError(f"no CircuitscopeError (expected one naming {needles})")


def main():
    m = cs.Model(MODEL)
    c = m.config
    d, layers = c["d_model"], c["n_layers"]

    # shapes and values across the boundary
    ids = m.tokenize("Question: Where was Xara Kestrel born?\nAnswer:")
    r = m.run(ids, capture=["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_pre"], tap=["blocks.1.hook_resid_pre"],
              metric=("logit", " Xara"))
    assert r.logits.shape == (1, len(ids), c["vocab_size"]) and r.logits.dtype == np.float32
    assert r.activations["blocks.0.attn.hook_pattern"].shape == (1, c["n_heads"], len(ids), len(ids))
    assert np.allclose(r.activations["blocks.0.attn.hook_pattern"].sum(-1), 1, atol=1e-5)
    g = r.gradients["blocks.1.hook_resid_pre"]
    assert g.shape == (1, len(ids), d) and np.isfinite(g).all() and np.abs(g).max() > 0
    assert abs(r.metric - r.logits[0, -1, m.tokenize(" Xara")[0]]) < 1e-4
    # a first-order check of the tapped gradient: adding ε·g at the tap raises the metric by ≈ ε‖g‖²
    eps = 1e-3 / np.linalg.norm(g)
    bumped = m.run(ids, edits=[cs.add("blocks.1.hook_resid_pre", eps * g)], metric=("logit", " Xara"))
    predicted = eps * float((g * g).sum())
    assert abs((bumped.metric - r.metric) - predicted) < 0.05 * predicted, (bumped.metric - r.metric, predicted)
    # zero-ablating a head changes its output, and only where asked
    z = m.run(ids, capture=["blocks.0.attn.hook_z"], edits=[cs.zero("blocks.0.attn.hook_z", heads=[1])])
    assert (z.activations["blocks.0.attn.hook_z"][:, :, 1] == 0).all()
    assert len(m.hook_names()) > 10 * layers

    # bad input: one clear exception each
    raises(lambda: cs.Model(os.path.join(ROOT, "no-such-model")), "no-such-model")
    raises(lambda: cs.Model(MODEL, dtype="int8"), "int8", "f32")
    raises(lambda: m.run(ids, capture=["blocks.0.hook_nonsense"]), "blocks.0.hook_nonsense")
    raises(lambda: m.run(ids, capture=[f"blocks.{layers}.hook_resid_pre"]), f"blocks.{layers}.hook_resid_pre")
    raises(lambda: m.run(ids, edits=[cs.replace("blocks.0.hook_resid_pre", np.zeros((3, 3, 3)))]), "blocks.0.hook_resid_pre")
    raises(lambda: m.run(ids, edits=[cs.add("blocks.0.hook_resid_pre", np.array(["a", "b"]))]), "array of numbers", "dtype")
    raises(lambda: m.run(np.array([[0.5, 1.5]])), "integers")
    raises(lambda: m.run([[1, 2, 3], [1, 2]]), "equally long")
    raises(lambda: m.run([10**7]), "vocabulary")
    raises(lambda: m.run(ids, tap=["blocks.0.hook_resid_pre"]), "metric")
    raises(lambda: m.run(ids, metric=("logit", " Xara Kestrel")), "one token")
    raises(lambda: m.token_text(10**7), "vocabulary")
    raises(lambda: cs.attribute(m, os.path.join(ROOT, "no-such.jsonl")), "no-such.jsonl")
    raises(lambda: cs.attribute(m, IOI, method="magic"), "magic")
    raises(lambda: cs.attribute(m, IOI, limit=0), "limit")
    scores = cs.attribute(m, IOI, method="eap", limit=4)
    small = scores.greedy(10)
    assert small.faithfulness(m, IOI, limit=4) == cs.faithfulness(m, IOI, small, limit=4)
    assert scores.score_matrix().shape == (len(scores.writer_names()), len(scores.reader_names()))
    raises(lambda: scores.top_n(0), "top_n 0", "1 to")
    raises(lambda: scores.threshold(float("nan")), "threshold")
    with tempfile.TemporaryDirectory() as tmp:
        raises(lambda: scores.greedy(10).save(os.path.join(tmp, "c.gif")), "c.gif", ".svg, .pdf or .png")
        for ext in ("pdf", "png"):
            scores.greedy(10).save(os.path.join(tmp, f"c.{ext}"))
            cs.plot("t", "x", "y", {"a": [(0, 0), (1, 1)]}).save(os.path.join(tmp, f"p.{ext}"))
        grouped = scores.greedy(10).to_svg(compact=True, group_heads=True)
        assert "summed score" in grouped and "heads as one node" in grouped
        part = os.path.join(ROOT, "circuits", "world-cure", "partition.json")
        coloured = scores.greedy(10).to_svg(partition=part)
        assert "CURE: forget-specific" in coloured and "attention head" not in coloured
        with open(os.path.join(tmp, "p.json"), "w", encoding="utf-8") as f:
            f.write('{"modules": 3}')
        raises(lambda: scores.greedy(10).to_svg(partition=os.path.join(tmp, "p.json")), "not a CURE partition")
        scores.greedy(10).save(os.path.join(tmp, "c.html"))
        with open(os.path.join(tmp, "c.html"), encoding="utf-8") as f:
            page = f.read()
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page and 'id="top-n"' in page
        with open(os.path.join(tmp, "c.pdf"), "rb") as f:
            assert f.read(5) == b"%PDF-"
        with open(os.path.join(tmp, "p.png"), "rb") as f:
            assert f.read(4) == b"\x89PNG"
        raises(lambda: m.save(os.path.join(tmp, "m")), "only a changed model")
    raises(lambda: cs.unlearn(m, FORGET, method="forget-harder"), "forget-harder")
    raises(lambda: cs.unlearn(m, FORGET, method="npo"), "retain")
    raises(lambda: cs.unlearn(m, FORGET, method="needle", limit=2), "needle=")
    raises(lambda: cs.unlearn(m, IOI, method="grad-ascent"), "ioi.jsonl")
    raises(lambda: cs.evaluate_unlearning(m, FORGET, FORGET), "forget10.jsonl", "perturbed_answer")
    raises(lambda: cs.cud(m, FORGET, [0], [10**6], limit=5), "out of range")
    # two methods that disagree: 1 and 4 are easy under one and hard under the other
    assert cs._native.anchor_consensus_sets([[0, 1], [4, 2]], [[4, 3], [1, 5]]) == ([0, 2], [3, 5], [1, 4])
    print("python/tests/test_package.py: every check passed")


if __name__ == "__main__":
    main()
