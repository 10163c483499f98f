"""circuitscope: mechanistic interpretability for machine unlearning, from Python.

The library is Rust (candle); this package is a thin layer over its extension module
``circuitscope._native``: arrays come back as numpy arrays, structured results as dicts, pictures
as :class:`SVG` objects that Jupyter displays. Every error of the library is raised as
:class:`CircuitscopeError` with the library's message (the file, tensor, field or hook point at
fault and what was expected).

A tour::

    import circuitscope as cs
    model = cs.Model("models/world-gpt2")              # a folder, a .gguf file, or "smollm2"
    run = model.run("Alice and Bob went", capture=["blocks.0.attn.hook_pattern"])
    scores = cs.attribute(model, "circuits/world/tasks/ioi.jsonl", limit=32)
    circuit = scores.greedy(60)                          # displays itself in a notebook
    cs.faithfulness(model, "circuits/world/tasks/ioi.jsonl", circuit)
    circuit.save("ioi.svg")
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import CircuitscopeError

__version__ = _native.__version__

__all__ = [
    "CircuitscopeError",
    "Model",
    "RunResult",
    "Edit",
    "zero",
    "scale",
    "replace",
    "add",
    "Circuit",
    "SVG",
    "attribute",
    "faithfulness",
    "faithfulness_curve",
    "compare",
    "plot",
    "unlearn",
    "answer_scores",
    "evaluate_unlearning",
    "anchors",
    "cud",
    "find_concept",
    "validate_concept",
    "audit_concept",
    "Partition",
    "cure_partition",
]

PathLike = Union[str, "os.PathLike[str]"]


def _array(pair: Tuple[bytes, Sequence[int]]) -> np.ndarray:
    data, shape = pair
    return np.frombuffer(data, dtype="<f4").reshape(tuple(shape)).copy()


def _float32(value, what: str) -> Tuple[bytes, List[int]]:
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - whatever numpy refuses, say what was expected
        raise CircuitscopeError(f"{what}: expected an array of numbers ({e})") from None
    if arr.dtype.kind not in "fiu":
        raise CircuitscopeError(f"{what}: expected an array of numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return arr.tobytes(), list(arr.shape)


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


class SVG:
    """A picture as SVG text: Jupyter shows it; :meth:`save` writes it."""

    def __init__(self, text: str):
        self.text = text

    def _repr_svg_(self) -> str:
        return self.text

    def save(self, path: PathLike) -> None:
        """Writes the picture as ``.svg``, ``.pdf`` (text stays text) or ``.png``, by the extension."""
        _native.save_picture(os.fspath(path), self.text)

    def __repr__(self) -> str:
        return f"SVG({len(self.text)} characters)"


# ---------------------------------------------------------------------------------------------
# models, hooks and forward passes


@dataclass
class Edit:
    """An intervention at one hook point of a forward pass (see :func:`zero`, :func:`scale`,
    :func:`replace`, :func:`add`), optionally only at some heads and/or positions."""

    kind: str
    hook: str
    array: Optional[np.ndarray] = None
    heads: Optional[List[int]] = None
    positions: Optional[List[int]] = None
    factor: float = 1.0

    def _spec(self):
        data, shape = (None, None)
        if self.array is not None:
            data, shape = _float32(self.array, f"{self.kind} at {self.hook}")
        heads = None if self.heads is None else [int(h) for h in self.heads]
        positions = None if self.positions is None else [int(p) for p in self.positions]
        return (self.kind, self.hook, data, shape, heads, positions, float(self.factor))


def zero(hook: str, heads: Optional[Sequence[int]] = None, positions: Optional[Sequence[int]] = None) -> Edit:
    """Zero-ablates ``hook`` (e.g. ``blocks.2.attn.hook_z`` with ``heads=[4]``)."""
    return Edit("zero", hook, heads=None if heads is None else list(heads), positions=None if positions is None else list(positions))


def scale(hook: str, factor: float, heads: Optional[Sequence[int]] = None, positions: Optional[Sequence[int]] = None) -> Edit:
    """Multiplies the activation at ``hook`` by ``factor``."""
    return Edit("scale", hook, heads=None if heads is None else list(heads), positions=None if positions is None else list(positions), factor=factor)


def replace(hook: str, array, heads: Optional[Sequence[int]] = None, positions: Optional[Sequence[int]] = None) -> Edit:
    """Replaces the activation at ``hook`` by ``array`` (broadcast to its shape): activation
    patching from another run's capture."""
    return Edit("replace", hook, np.asarray(array), None if heads is None else list(heads), None if positions is None else list(positions))


def add(hook: str, array, heads: Optional[Sequence[int]] = None, positions: Optional[Sequence[int]] = None) -> Edit:
    """Adds ``array`` (broadcast) to the activation at ``hook``: steering."""
    return Edit("add", hook, np.asarray(array), None if heads is None else list(heads), None if positions is None else list(positions))


@dataclass
class RunResult:
    """What :meth:`Model.run` returns: logits (batch, seq, vocab), the captured activations and
    the gradients of the metric at the tapped hook points (numpy, float32), and the metric."""

    logits: np.ndarray
    activations: Dict[str, np.ndarray] = field(default_factory=dict)
    gradients: Dict[str, np.ndarray] = field(default_factory=dict)
    metric: Optional[float] = None


class Model:
    """A language model loaded from a Hugging Face folder (config.json, safetensors,
    tokenizer.json), a GGUF file, or ``"smollm2"`` (SmolLM2-135M-Instruct, fetched once into a
    cache by the repository's scripts/fetch-smollm2.sh).

    Models that unlearning returns hold their changed weights in memory (``modified``);
    :meth:`save` writes them as a checkpoint folder.
    """

    def __init__(self, path: PathLike, dtype: str = "f32"):
        self._m = _native.Model(os.fspath(path), dtype)
        self.unlearning: Optional[dict] = None
        self._config: Optional[dict] = None

    @classmethod
    def _wrap(cls, native, unlearning: Optional[dict] = None) -> "Model":
        m = cls.__new__(cls)
        m._m, m.unlearning, m._config = native, unlearning, None
        return m

    @property
    def path(self) -> str:
        """Where the checkpoint was loaded from."""
        return self._m.path

    @property
    def modified(self) -> bool:
        """Whether the weights were changed in memory (by unlearning)."""
        return self._m.modified

    @property
    def config(self) -> dict:
        """Family, architecture and sizes (n_layers, n_heads, d_model, d_mlp, vocab_size, …)."""
        if self._config is None:
            self._config = json.loads(self._m.config_json())
        return self._config

    @property
    def n_layers(self) -> int:
        return self.config["n_layers"]

    @property
    def n_heads(self) -> int:
        return self.config["n_heads"]

    def hook_names(self) -> List[str]:
        """Every hook point's TransformerLens name, in firing order."""
        return self._m.hook_names()

    def hook_shape(self, name: str) -> List[str]:
        """The activation shape at a hook point (``batch``/``seq`` stand for the run's)."""
        return self._m.hook_shape(name)

    def tokenize(self, text: str) -> List[int]:
        return self._m.tokenize(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._m.decode([int(i) for i in ids])

    def token_text(self, token_id: int) -> str:
        return self._m.token_text(int(token_id))

    def prompt(self, question: str) -> str:
        """The prompt asking ``question``: the model's chat template, else
        ``Question: …\\nAnswer:``."""
        return self._m.prompt(question)

    def _token(self, t: Union[int, str]) -> int:
        if isinstance(t, (int, np.integer)):
            return int(t)
        ids = self.tokenize(t)
        if len(ids) != 1:
            raise CircuitscopeError(f"metric token {t!r} is {len(ids)} tokens; give one token (or its id)")
        return ids[0]

    def _ids(self, inputs) -> List[List[int]]:
        if isinstance(inputs, str):
            return [self.tokenize(inputs)]
        if isinstance(inputs, np.ndarray):
            if inputs.dtype.kind not in "iu":
                raise CircuitscopeError(f"inputs: token ids must be integers, got dtype {inputs.dtype}")
            inputs = inputs.tolist()
        inputs = list(inputs)
        if inputs and all(isinstance(x, str) for x in inputs):
            return [self.tokenize(x) for x in inputs]
        if inputs and all(isinstance(x, (int, np.integer)) for x in inputs):
            return [[int(x) for x in inputs]]
        try:
            return [[int(t) for t in row] for row in inputs]
        except (TypeError, ValueError):
            raise CircuitscopeError("inputs: give a text, a list of texts, a list of token ids or a batch of them") from None

    def run(
        self,
        inputs,
        capture: Iterable[str] = (),
        tap: Iterable[str] = (),
        edits: Iterable[Edit] = (),
        metric: Optional[tuple] = None,
    ) -> RunResult:
        """One forward pass over ``inputs`` (a text, texts of equal token length, or token ids).

        ``capture``: hook names whose activations to return. ``edits``: interventions
        (:func:`zero`, :func:`scale`, :func:`replace`, :func:`add`). ``metric``: ``("logit", t)``,
        ``("logit-diff", a, b)`` or ``("logprob", t)`` at the last position, summed over the batch
        (tokens as ids or one-token strings); with ``tap``, d(metric)/d(activation) at each tapped
        hook point, from one backward pass."""
        spec = None
        if metric is not None:
            if not metric or not isinstance(metric[0], str):
                raise CircuitscopeError("metric: give (\"logit\", token), (\"logit-diff\", a, b) or (\"logprob\", token)")
            spec = (metric[0], [self._token(t) for t in metric[1:]])
        logits, caps, grads, value = self._m.run(
            self._ids(inputs), list(capture), list(tap), [e._spec() for e in edits], spec
        )
        return RunResult(
            logits=_array(logits),
            activations={n: _array(a) for n, a in caps},
            gradients={n: _array(a) for n, a in grads},
            metric=value,
        )

    def generate(self, prompts: Union[str, Sequence[str]], max_new_tokens: int = 32) -> Union[str, List[str]]:
        """Greedy continuation(s), stopping at the end token; a list of prompts runs batched."""
        single = isinstance(prompts, str)
        out = self._m.generate([prompts] if single else list(prompts), max_new_tokens)
        return out[0] if single else out

    def logit_lens(self, text: str, k: int = 5) -> List[List[dict]]:
        """Per layer, the ``k`` tokens its residual stream predicts after ``text``."""
        return json.loads(self._m.logit_lens_json(text, k))

    def save(self, folder: PathLike) -> None:
        """Writes changed weights as a checkpoint folder that :class:`Model` loads."""
        self._m.save(os.fspath(folder))

    def __repr__(self) -> str:
        c = self.config
        changed = ", modified in memory" if self.modified else ""
        return f"Model({os.path.basename(self.path.rstrip('/'))!r}: {c['family']}, {c['n_layers']} layers × {c['n_heads']} heads, d_model {c['d_model']}{changed})"


# ---------------------------------------------------------------------------------------------
# attribution and circuits


class Circuit:
    """Edge scores over a model's graph, and the edges and nodes in the circuit.

    :func:`attribute` returns scores (no edge selected yet) with ``meta`` and, when asked,
    ``per_sample`` (items × writers × readers); :meth:`top_n`, :meth:`greedy` and
    :meth:`threshold` select circuits, which Jupyter draws."""

    def __init__(self, native, meta: Optional[dict] = None, per_sample: Optional[np.ndarray] = None, title: str = ""):
        self._c = native
        self.meta = meta
        self.per_sample = per_sample
        self.title = title

    @staticmethod
    def load(path: PathLike) -> "Circuit":
        """Reads a scores or circuit JSON in the EAP-IG/MIB layout."""
        return Circuit(_native.Circuit.load(os.fspath(path)))

    @property
    def n_edges(self) -> int:
        """Edges in the circuit (0 for scores)."""
        return self._c.n_edges

    @property
    def n_nodes(self) -> int:
        return self._c.n_nodes

    @property
    def n_graph_edges(self) -> int:
        """Edges of the whole graph."""
        return self._c.n_graph_edges

    def score_matrix(self) -> np.ndarray:
        """The (writers, readers) score matrix in the EAP-IG layout (0 where there is no edge)."""
        return _array(self._c.score_matrix())

    def writer_names(self) -> List[str]:
        return self._c.writer_names()

    def reader_names(self) -> List[str]:
        return self._c.reader_names()

    def edges(self, in_circuit: bool = False) -> List[Tuple[str, float]]:
        """(edge name, score), largest |score| first; the circuit's edges with ``in_circuit``."""
        return self._c.edges(in_circuit)

    def nodes(self) -> List[str]:
        """The circuit's nodes (``input``, ``a3.h1``, ``m2``, ``logits``)."""
        return self._c.nodes()

    def node_scores(self) -> Optional[Dict[str, float]]:
        """Node attribution scores, where the method gave them."""
        ns = self._c.node_scores()
        return None if ns is None else {n: s for n, s in ns if not math.isnan(s)}

    def _select(self, native, how: str) -> "Circuit":
        return Circuit(native, title=self.title or how)

    def top_n(self, n: int, prune: bool = True) -> "Circuit":
        """The ``n`` edges of largest |score| (pruned to input → logits paths)."""
        return self._select(self._c.top_n(n, prune), f"top {n}")

    def greedy(self, n: int, prune: bool = True) -> "Circuit":
        """``n`` edges grown greedily from the logits (pruned)."""
        return self._select(self._c.greedy(n, prune), f"greedy {n}")

    def threshold(self, t: float, prune: bool = True) -> "Circuit":
        """The edges with |score| ≥ ``t`` (pruned)."""
        return self._select(self._c.threshold(t, prune), f"|score| ≥ {t}")

    def faithfulness(self, model: "Model", data: PathLike, **kwargs) -> dict:
        """This circuit's normalised faithfulness on ``data`` (see :func:`faithfulness`)."""
        return faithfulness(model, data, self, **kwargs)

    def faithfulness_curve(self, model: "Model", data: PathLike, **kwargs) -> "Curve":
        """Circuits re-selected from these scores at increasing sizes (see :func:`faithfulness_curve`)."""
        return faithfulness_curve(model, data, self, **kwargs)

    def structure(self) -> dict:
        """Edges, |score|-weighted mean writer layer, deepest layer, the longest input → logits
        path and edges per writer layer (entry 0: the input)."""
        return json.loads(self._c.structure_json())

    def to_svg(self, title: Optional[str] = None, compact: bool = False, width: Optional[float] = None, greyscale: bool = False, group_heads: bool = False, partition: Union["Partition", PathLike, None] = None) -> str:
        """The drawing as SVG text: ``compact`` keeps only the circuit's layers and nodes (large
        models), ``width`` sets the page width in points (a paper column: about 240), ``greyscale``
        draws in greys for greyscale printing, ``group_heads`` draws each layer's heads as one
        node (``a5.h1,3,7``; the edges between the same nodes merged, their scores summed),
        ``partition`` (a :class:`Partition`, or the path of ``circuitscope cure``'s JSON) colours
        each head and MLP by its category."""
        part = _partition_json(partition)
        return self._c.to_svg(self.title if title is None else title, compact, width, greyscale, group_heads, part)

    def to_html(self, title: Optional[str] = None, compact: bool = False) -> str:
        """One self-contained HTML page to explore the circuit in a browser: hover an edge or a node
        for its score, click a node to trace it, filter by top-n or |score| (``circuitscope view``)."""
        return self._c.to_html(self.title if title is None else title, compact)

    def to_dot(self, title: Optional[str] = None) -> str:
        return self._c.to_dot(self.title if title is None else title)

    def to_json(self) -> str:
        """The EAP-IG/MIB JSON."""
        return self._c.to_json()

    def save(self, path: PathLike, title: Optional[str] = None, compact: bool = False, width: Optional[float] = None, greyscale: bool = False, group_heads: bool = False, partition: Union["Partition", PathLike, None] = None) -> None:
        """Writes ``.json`` or ``.dot``, draws ``.svg``, ``.pdf`` or ``.png`` (see :meth:`to_svg`), or
        writes the ``.html`` page of :meth:`to_html`, chosen by the extension."""
        part = _partition_json(partition)
        self._c.save(os.fspath(path), self.title if title is None else title, compact, width, greyscale, group_heads, part)

    def _repr_svg_(self) -> Optional[str]:
        # scores have no edge selected: nothing to draw
        return self.to_svg() if self.n_edges > 0 else None

    def __repr__(self) -> str:
        if self.n_edges == 0:
            return f"Circuit(scores of {self.n_graph_edges} edges, none selected)"
        return f"Circuit({self.n_edges} of {self.n_graph_edges} edges, {self.n_nodes} nodes)"


def attribute(
    model: Model,
    data: PathLike,
    method: str = "eap-ig-inputs",
    steps: int = 5,
    metric: Optional[str] = None,
    intervention: Optional[str] = None,
    limit: Optional[int] = None,
    batch_size: int = 8,
    max_rows: int = 64,
    qk_fix: bool = False,
    mlp_fix: bool = False,
    per_sample: bool = False,
) -> Circuit:
    """Scores every edge of ``model``'s graph on a task or question/answer file.

    ``method``: eap, eap-ig-inputs, eap-ig-activations, clean-corrupted or exact. ``metric`` and
    ``intervention`` default to the data kind's (tasks: logit-diff with patching; question/answer:
    nll with zero ablation). Returns the scores as a :class:`Circuit` with no edge selected, its
    ``meta`` (clean and corrupted metric, passes, seconds) and ``per_sample`` when asked."""
    native, meta, ps = _native.attribute(
        model._m, os.fspath(data), method, steps, metric, intervention, limit, batch_size, max_rows, qk_fix, mlp_fix, per_sample
    )
    return Circuit(native, meta=json.loads(meta), per_sample=None if ps is None else _array(ps))


def faithfulness(
    model: Model,
    data: PathLike,
    circuits: Union[Circuit, Sequence[Circuit]],
    metric: Optional[str] = None,
    intervention: Optional[str] = None,
    limit: Optional[int] = None,
    batch_size: int = 8,
) -> dict:
    """Normalised faithfulness of each circuit: (M(circuit) − M(corrupted)) / (M(model) −
    M(corrupted)), every edge outside the circuit patched."""
    cs = [circuits] if isinstance(circuits, Circuit) else list(circuits)
    out = json.loads(_native.faithfulness(model._m, os.fspath(data), [c._c for c in cs], metric, intervention, limit, batch_size))
    if isinstance(circuits, Circuit):
        out["faithfulness"] = out["normalised"][0]
    return out


@dataclass
class Curve:
    """A faithfulness curve: its points, CPR, CMD and the smallest circuit reaching the target;
    Jupyter draws it."""

    result: dict
    svg: SVG

    def _repr_svg_(self) -> str:
        return self.svg.text

    def __getitem__(self, key):
        return self.result[key]

    def __repr__(self) -> str:
        r = self.result
        return f"Curve({len(r['points'])} circuits, CPR {r['cpr']:.4f}, CMD {r['cmd']:.4f})"


def faithfulness_curve(
    model: Model,
    data: PathLike,
    scores: Circuit,
    points: Optional[Sequence[int]] = None,
    selection: str = "top-n",
    target: float = 0.8,
    metric: Optional[str] = None,
    intervention: Optional[str] = None,
    limit: Optional[int] = None,
    batch_size: int = 8,
    title: str = "Faithfulness",
) -> Curve:
    """Faithfulness of circuits re-selected from ``scores`` at increasing edge counts (default
    1, 2, 5, 10, … and every edge), with CPR (area under the curve) and CMD (area between it and 1)."""
    pts = None if points is None else [int(p) for p in points]
    text, svg = _native.faithfulness_curve(
        model._m, os.fspath(data), scores._c, pts, selection, target, metric, intervention, limit, batch_size, title
    )
    return Curve(json.loads(text), SVG(svg))


@dataclass
class Agreement:
    """How two score sets agree over every edge; Jupyter draws edge rank against edge rank."""

    result: dict
    svg: SVG

    def _repr_svg_(self) -> str:
        return self.svg.text

    def __getitem__(self, key):
        return self.result[key]

    def __repr__(self) -> str:
        r = self.result
        return f"Agreement({r['n_edges']} edges: Spearman {r['spearman']:.4f} signed, {r['spearman_abs']:.4f} |score|)"


def compare(a: Circuit, b: Circuit, tops: Optional[Sequence[int]] = None, labels: Tuple[str, str] = ("A", "B")) -> Agreement:
    """Spearman (signed and |score|), Pearson, top-n overlaps and agreement per kind of edge."""
    text, svg = _native.compare(a._c, b._c, None if tops is None else [int(t) for t in tops], labels[0], labels[1])
    return Agreement(json.loads(text), SVG(svg))


def plot(title: str, x_label: str, y_label: str, series: Dict[str, Sequence[Tuple[float, float]]], scatter: bool = False) -> SVG:
    """A line (or scatter) plot of named (x, y) series in circuitscope's own chart style."""
    pts = [(name, [(float(x), float(y)) for x, y in points]) for name, points in series.items()]
    return SVG(_native.line_plot_svg(title, x_label, y_label, pts, scatter))


# ---------------------------------------------------------------------------------------------
# unlearning and its evaluation


def unlearn(
    model: Model,
    forget: PathLike,
    retain: Optional[PathLike] = None,
    method: str = "npo",
    limit: Optional[int] = None,
    epochs: Optional[int] = None,
    lr: Optional[float] = None,
    batch: Optional[int] = None,
    alpha: Optional[float] = None,
    seed: Optional[int] = None,
    needle: Optional[Tuple[int, int, float]] = None,
    partition: Optional["Partition"] = None,
) -> Model:
    """Unlearns a question/answer file from ``model`` with grad-ascent, grad-diff, npo, simnpo,
    rmu, needle (``needle=(layer, dim, sigma)``) or cure (``partition=cure_partition(…)``), at the
    documented settings unless overridden. Returns the unlearned model (in memory; ``save``
    writes it) with the run's record in ``.unlearning``."""
    native, record = _native.unlearn(
        model._m, os.fspath(forget), _path(retain), method, limit, epochs, lr, batch, alpha, seed, needle,
        None if partition is None else partition.json,
    )
    return Model._wrap(native, json.loads(record))


def answer_scores(model: Model, data: PathLike, limit: Optional[int] = None, batch: int = 16) -> List[dict]:
    """Per question/answer sample: the answer's NLL per token, probability, and whether the
    model's argmax reproduces every answer token (``exact``)."""
    return json.loads(_native.answer_scores(model._m, os.fspath(data), limit, batch))


def evaluate_unlearning(
    model: Model,
    forget: PathLike,
    retain: PathLike,
    real_authors: Optional[PathLike] = None,
    world_facts: Optional[PathLike] = None,
    holdout: Optional[PathLike] = None,
    retain_model: Optional[Model] = None,
    limit: Optional[int] = None,
    max_new_tokens: int = 200,
    batch: int = 16,
) -> dict:
    """TOFU's evaluation (open-unlearning's measures): ``summary`` (forget quality against
    ``retain_model``, model utility, per-set probability, ROUGE-L, truth ratio, MIA AUCs,
    privleak) and every question's scores. Files are TOFU's ``*_perturbed.jsonl``."""
    return json.loads(
        _native.evaluate_unlearning(
            model._m, os.fspath(forget), os.fspath(retain), _path(real_authors), _path(world_facts), _path(holdout),
            None if retain_model is None else retain_model._m, limit, max_new_tokens, batch,
        )
    )


# ---------------------------------------------------------------------------------------------
# CUD: unlearning difficulty from circuits


def anchors(
    model: Model,
    forget: PathLike,
    retain: Optional[PathLike] = None,
    methods: Sequence[str] = ("grad-diff", "npo", "simnpo", "rmu"),
    k: Optional[int] = None,
    limit: Optional[int] = None,
) -> dict:
    """CUD's anchors: each method unlearns the whole forget set from the checkpoint; per method
    the ``k`` samples it forgets best (easy) and least (hard; default a quarter of the set); the
    consensus keeps samples in at least half the methods' sets, less the contested ones that are
    in both consensus sets (possible with an even number of methods), which anchor neither side.
    Returns ``{"runs", "easy", "hard", "contested"}``."""
    runs = [json.loads(_native.anchor_run(model._m, os.fspath(forget), _path(retain), m, k, limit)) for m in methods]
    easy, hard, contested = _native.anchor_consensus_sets([r["easy"] for r in runs], [r["hard"] for r in runs])
    return {"runs": runs, "easy": easy, "hard": hard, "contested": contested}


def cud(
    model: Model,
    forget: PathLike,
    easy: Sequence[int],
    hard: Sequence[int],
    samples: Optional[Sequence[int]] = None,
    anchor_data: Optional[PathLike] = None,
    limit: Optional[int] = None,
    edges: int = 75,
    method: str = "eap-ig-activations",
    steps: int = 5,
    batch: int = 8,
) -> dict:
    """Circuit-guided unlearning difficulty (ALGORITHMS.md §5): the easy and hard anchor circuits
    (samples ``easy``/``hard`` of ``anchor_data``, default ``forget``, attributed jointly), each
    sample's own circuit, and CUD = d_easy / (d_easy + d_hard) (1: like the hard anchors).
    Returns ``{"easy", "hard"}`` circuits and per sample ``scores`` ({cud, d_easy, d_hard}) and
    ``circuits``."""
    src = os.fspath(anchor_data if anchor_data is not None else forget)
    mk = lambda idx: Circuit(  # noqa: E731
        _native.cud_circuits(model._m, src, [int(i) for i in idx], limit, edges, method, steps, batch, True)[0]
    )
    e, h = mk(easy), mk(hard)
    e.title, h.title = f"easy anchor ({len(easy)} samples)", f"hard anchor ({len(hard)} samples)"
    idx = None if samples is None else [int(i) for i in samples]
    circuits = [Circuit(c) for c in _native.cud_circuits(model._m, os.fspath(forget), idx, limit, edges, method, steps, batch, False)]
    scores = [json.loads(_native.cud_distances(c._c, e._c, h._c)) for c in circuits]
    return {"easy": e, "hard": h, "circuits": circuits, "scores": scores}


# ---------------------------------------------------------------------------------------------
# concept vectors


def find_concept(model: Model, terms: str, candidates: int = 5) -> List[dict]:
    """The MLP value vectors whose unembedding projections rank ``terms``' tokens highest."""
    return json.loads(_native.concept_find(model._m, terms, candidates))


def validate_concept(
    model: Model,
    vector: Tuple[int, int],
    concept_questions: Sequence[str],
    unrelated_questions: Sequence[str],
    sigma: float = 0.1,
    seeds: Sequence[int] = (8888,),
    max_new_tokens: int = 24,
    template: str = "Question: {q}\nAnswer:",
) -> dict:
    """Noise on value vector (layer, dim): BLEU and ROUGE-L of the noisy model's answers against
    the original's, on the concept's questions and on unrelated ones (1 = unchanged)."""
    return json.loads(
        _native.concept_validate(
            model._m, int(vector[0]), int(vector[1]), list(concept_questions), list(unrelated_questions),
            sigma, [int(s) for s in seeds], max_new_tokens, template,
        )
    )


def audit_concept(before: Model, after: Model, vectors: Sequence[Tuple[int, int]], terms: Optional[str] = None) -> List[dict]:
    """Value vectors before and after (unlearning): cosine, L2, top-200 Jaccard and the share of
    the concept's tokens still in the top 200."""
    return json.loads(_native.concept_audit(before._m, after._m, [(int(l), int(d)) for l, d in vectors], terms))


# ---------------------------------------------------------------------------------------------
# CURE


def _partition_json(partition: Union["Partition", PathLike, None]) -> Optional[str]:
    """A partition's JSON text: a :class:`Partition`'s, or a partition file's."""
    if partition is None or isinstance(partition, Partition):
        return None if partition is None else partition.json
    with open(os.fspath(partition), encoding="utf-8") as f:
        return f.read()


class Partition:
    """CURE's partition of heads and MLPs into forget-specific, retain-specific, task-shared and
    outside; Jupyter draws it; :func:`unlearn` with ``method="cure"`` updates by it."""

    def __init__(self, text: str, svg: str):
        self.json = text
        self.result = json.loads(text)
        self.svg = SVG(svg)

    def modules(self, category: Optional[str] = None) -> List[dict]:
        """Every module (name, forget and retain scores, p-value, category), or one category's."""
        ms = self.result["modules"]
        return ms if category is None else [m for m in ms if m["category"] == category]

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for m in self.result["modules"]:
            out[m["category"]] = out.get(m["category"], 0) + 1
        return out

    def save(self, path: PathLike) -> None:
        """Writes the partition JSON that ``circuitscope unlearn --method cure --partition`` reads
        (``partition.svg.save(…)`` writes its drawing)."""
        with open(os.fspath(path), "w", encoding="utf-8") as f:
            f.write(self.json)

    def _repr_svg_(self) -> str:
        return self.svg.text

    def __repr__(self) -> str:
        return "Partition(" + ", ".join(f"{n} {c}" for c, n in sorted(self.counts().items())) + ")"


def cure_partition(
    model: Model,
    forget: PathLike,
    retain: PathLike,
    limit: Optional[int] = None,
    method: str = "eap-ig-inputs",
    steps: int = 5,
    threshold: float = 0.2,
    top_k: Optional[int] = None,
    contrast: Optional[float] = None,
    permutations: int = 1999,
    batch: int = 8,
    title: str = "CURE partition",
) -> Partition:
    """Sorts every head and MLP by its node attribution on the forget and retain sets (ALGORITHMS.md §7)."""
    text, svg = _native.cure_partition(
        model._m, os.fspath(forget), os.fspath(retain), limit, method, steps, threshold, top_k, contrast, permutations, batch, title
    )
    return Partition(text, svg)
