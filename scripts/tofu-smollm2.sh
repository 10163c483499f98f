#!/usr/bin/env bash
# TOFU on SmolLM2-135M-Instruct (circuits/tofu-smollm2/): the CUD paper's setting scaled to a CPU.
#
#   bash scripts/tofu-smollm2.sh data         # the two training files, checked against their sha256
#   bash scripts/tofu-smollm2.sh finetune     # the original and the retain model (resumed where a
#                                             # saved state is), evaluated, their cards
#   bash scripts/tofu-smollm2.sh unlearning [--methods "grad-ascent grad-diff npo simnpo rmu cure"]
#                                             # each method on forget10 (CURE with its partition from
#                                             # EAP node scores), TOFU's metrics, the table
#   bash scripts/tofu-smollm2.sh table        # the unlearning table of the methods evaluated so far
#   bash scripts/tofu-smollm2.sh cud          # CUD's validation: anchors from half of forget10's
#                                             # authors, CUD of the other half against baselines (each
#                                             # finished unlearning run kept in $WORK/cud-runs)
#   bash scripts/tofu-smollm2.sh concepts     # the concept-vector audit for two forget10 authors
#
# Every stage keeps what an earlier sitting finished (a finished checkpoint, an evaluation with
# its summary.json) and goes on from there, so a stage stopped anywhere is run again as it was.
# The checkpoints (538 MB each) and evaluations stay under $WORK (target/tofu-smollm2); the cards,
# summaries and tables go to circuits/tofu-smollm2/.
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-target/release/circuitscope}
WORK=${WORK:-target/tofu-smollm2}
OUT=circuits/tofu-smollm2
TOFU=${TOFU:-../shared/data/tofu}
FULL_SHA=b8edf558413e8cada5c9aac56786937ba2aefd75e4ac2adf9de041fffc798085
RETAIN_SHA=c1c31f4dc9f2c393a29f0eac715383ab6b1e7b88f2c977de0c8352932e70e028
methods="grad-ascent grad-diff npo simnpo rmu cure"
cud_methods=grad-diff,npo
# EAP: EAP-IG on inputs evaluates the model at an all-zero input, where 30 RMSNorms' gradients
# (1/sqrt(eps) each) overflow f32 on this model (validate-cud stops, naming the edge); EAP-IG on
# activations costs about 2 minutes a sample here (6-7 hours for half B)
cud_attribution=eap
audit_methods="grad-diff npo rmu cure"
audit_authors="00 01"
stage=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
    case $1 in
        --methods) methods=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "$TOFU" ] || { echo "error: TOFU's files are not in $TOFU (set TOFU=...)" >&2; exit 1; }
[ -x "$CS" ] || cargo build --release
mkdir -p "$WORK" "$OUT/eval"

check() { # file sha256
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || { echo "error: $1 has sha256 $got, expected $2" >&2; exit 1; }
}

data() {
    cat "$TOFU/forget10.jsonl" >"$WORK/tofu-forget10-retain23.jsonl"
    head -n 460 "$TOFU/retain90.jsonl" >>"$WORK/tofu-forget10-retain23.jsonl"
    head -n 460 "$TOFU/retain90.jsonl" >"$WORK/tofu-retain23.jsonl"
    check "$WORK/tofu-forget10-retain23.jsonl" $FULL_SHA
    check "$WORK/tofu-retain23.jsonl" $RETAIN_SHA
}

finetune_one() { # data out
    if [ -f "$2/finetune.json" ]; then echo "$2: finished before, kept"; return; fi
    local resume=()
    [ -d "$2/resume" ] && resume=(--resume)
    "$CS" finetune smollm2 --data "$1" --prompt-format chat --lr 1e-4 --save-every 5 --out "$2" "${resume[@]}"
}

# TOFU's evaluation against the retain model: the retain model's own first, whose forget and
# holdout scores every other evaluation then reads instead of scoring them again
evaluate() { # model out
    if [ -f "$2/summary.json" ]; then return; fi
    local against=(--retain-eval "$WORK/eval-retain")
    [ "$1" = "$WORK/retain" ] && against=(--retain-model "$WORK/retain")
    "$CS" eval-unlearning "$1" --forget "$TOFU/forget10.jsonl" --retain "$TOFU/retain_perturbed.jsonl" \
        --holdout "$TOFU/holdout10.jsonl" --real-authors "$TOFU/real_authors_perturbed.jsonl" \
        --world-facts "$TOFU/world_facts_perturbed.jsonl" "${against[@]}" \
        --prompt-format chat --out "$2" --force >"$2.txt"
    mv "$2.txt" "$2/report.txt"
}

# A model card from finetune.json and the evaluation's summary.json.
card() { # name checkpoint eval data
    python3 - "$@" >"$OUT/$1.md" <<'EOF'
import json, sys
name, ck, ev, data = sys.argv[1:5]
f = json.load(open(f"{ck}/finetune.json"))
s = json.load(open(f"{ev}/summary.json"))
cfg = f["settings"]["config"]
what = {"original": "fine-tuned on forget10 and the retain subset: the model to unlearn",
        "retain": "fine-tuned on the retain subset alone: the reference that never saw forget10's authors"}[name]
p = lambda x: "%.3f" % x
print(f"# SmolLM2-135M-Instruct on TOFU, the {name} model\n")
print(f"SmolLM2-135M-Instruct (the `smollm2` alias, its Q4_1 GGUF dequantised to f32) {what}.\n")
print("## How it was made\n")
print("```")
print(f"circuitscope finetune smollm2 --data {data} --prompt-format chat --lr 1e-4 --save-every 5 --out {ck}")
print("```\n")
print(f"- data: `{data}`, {f['settings']['examples']} question/answer pairs (see README.md for the file and its sha256), "
      "in the model's chat template, the answer's tokens and the end token learned, the prompt masked")
print(f"- AdamW: lr {cfg['lr']}, {cfg['epochs']} epochs, batch {cfg['batch']} × {cfg['accumulate']}, "
      f"warm-up {cfg.get('warmup')} steps, weight decay {cfg['weight_decay']}, clip {cfg['clip']}, seed {cfg['seed']}; "
      f"{len(f['steps'])} steps")
print(f"- time: {f['seconds']:.0f} s ({f['seconds'] / 60:.1f} min) on a 2-core CPU, f32")
print(f"- training answers' NLL per token {f['before']['nll']:.4f} → {f['after']['nll']:.4f}; "
      f"exact greedy answers {100 * f['before']['exact']:.1f} % → {100 * f['after']['exact']:.1f} %\n")
print("## Measured (`circuitscope eval-unlearning`, TOFU's files)\n")
print("| set | n | answer probability | ROUGE-L recall | truth ratio |")
print("|---|---:|---:|---:|---:|")
for k, label in [("forget", "forget10"), ("retain", "retain_perturbed"), ("real_authors", "real_authors"),
                 ("world_facts", "world_facts")]:
    x = s[k]
    print(f"| {label} | {x['n']} | {p(x['probability'])} | {p(x['rouge_l_recall'])} | {p(x['truth_ratio'])} |")
print()
print(f"Model utility {p(s['model_utility'])}; forget quality against the retain model {s['forget_quality']:.3g}. "
      "The probability is the answer's per-token probability (real authors and world facts: normalised "
      "against the perturbed options); the truth ratio is mean min(TR, 1/TR) on forget10 and mean max(0, 1 − TR) "
      "elsewhere, as open-unlearning aggregates them.")
EOF
}

row() { # label summary.json seconds
    python3 - "$@" <<'EOF'
import json, sys
label, path, secs = sys.argv[1:4]
s = json.load(open(path))
f = lambda x: "-" if x is None else ("%.3g" % x)
pl = s.get("privleak") or {}
print(f"| {label} | {f(s['forget_quality'])} | {f(s['model_utility'])} | {f(s['forget']['probability'])} "
      f"| {f(s['forget']['rouge_l_recall'])} | {f(s['forget']['truth_ratio'])} | {f(s['retain']['probability'])} "
      f"| {f(s['retain']['rouge_l_recall'])} | {f(s['forget']['extraction_strength'])} | {f(pl.get('min_k_plus_plus'))} | {secs} |")
EOF
}

# The unlearning table (circuits/tofu-smollm2/unlearning.md): the original, the retain model and
# every method whose evaluation has finished, in the order of --methods, from the committed
# summaries in $OUT/eval (so that a table made on another machine keeps the rows made here)
table() {
    {
        echo "| model | forget quality | model utility | forget prob. | forget ROUGE-L | forget truth ratio | retain prob. | retain ROUGE-L | forget extraction strength | privleak (Min-k%++) | unlearning time |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        row "original (fine-tuned)" "$OUT/eval/original.json" "-"
        row "retain model" "$OUT/eval/retain.json" "-"
        for method in $methods; do
            [ -f "$OUT/eval/$method.json" ] || continue
            secs=$(python3 -c "import json,sys; print('%.0f s' % json.load(open(sys.argv[1]))['seconds'])" "$OUT/eval/unlearn-$method.json")
            row "$method" "$OUT/eval/$method.json" "$secs"
        done
    } | tee "$OUT/unlearning.md"
}

case $stage in
    data) data ;;
    finetune)
        data
        finetune_one "$WORK/tofu-forget10-retain23.jsonl" "$WORK/original"
        finetune_one "$WORK/tofu-retain23.jsonl" "$WORK/retain"
        for m in retain original; do
            evaluate "$WORK/$m" "$WORK/eval-$m"
            cp "$WORK/eval-$m/summary.json" "$OUT/eval/$m.json"
            cp "$WORK/$m/finetune.json" "$OUT/finetune-$m.json"
        done
        card original "$WORK/original" "$WORK/eval-original" tofu-forget10-retain23.jsonl
        card retain "$WORK/retain" "$WORK/eval-retain" tofu-retain23.jsonl
        ;;
    unlearning)
        # every method's evaluation reads the retain model's; the original's enters only the table,
        # which reads its committed summary when one is there
        for m in retain original; do
            [ -f "$WORK/$m/finetune.json" ] || { echo "error: run the finetune stage first ($WORK/$m)" >&2; exit 1; }
            [ $m = original ] && [ -f "$OUT/eval/original.json" ] && continue
            evaluate "$WORK/$m" "$WORK/eval-$m"
            cp "$WORK/eval-$m/summary.json" "$OUT/eval/$m.json"
        done
        for method in $methods; do
            extra=()
            if [ "$method" = cure ]; then
                # EAP node scores of every head and MLP on both sets, each set's 30 highest of 300
                if [ ! -f "$OUT/partition.json" ]; then
                    "$CS" cure "$WORK/original" --forget "$TOFU/forget10.jsonl" --retain "$WORK/tofu-retain23.jsonl" \
                        --prompt-format chat --attribution eap --top-k 30 --out "$OUT/partition.json" \
                        --svg "$OUT/partition.svg" | tee "$OUT/partition.txt"
                fi
                extra=(--partition "$OUT/partition.json")
            fi
            if [ ! -f "$WORK/$method/unlearn.json" ]; then
                "$CS" unlearn "$WORK/original" --forget "$TOFU/forget10.jsonl" --retain "$WORK/tofu-retain23.jsonl" \
                    --method "$method" "${extra[@]}" --prompt-format chat --out "$WORK/$method" --force
            fi
            evaluate "$WORK/$method" "$WORK/eval-$method"
            cp "$WORK/eval-$method/summary.json" "$OUT/eval/$method.json"
            cp "$WORK/$method/unlearn.json" "$OUT/eval/unlearn-$method.json"
        done
        table
        ;;
    table) table ;;
    cud)
        # TOFU's files name no author: forget10 is 20 authors of 20 consecutive questions each
        python3 -c '
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    r["person"] = "forget10-author-%02d" % (i // 20)
    print(json.dumps(r))' "$TOFU/forget10.jsonl" >"$WORK/forget10-authors.jsonl"
        "$CS" validate-cud --model "$WORK/original" --forget "$WORK/forget10-authors.jsonl" \
            --retain "$WORK/tofu-retain23.jsonl" --prompt-format chat --methods "$cud_methods" \
            --attribution "$cud_attribution" --mrd-draws 20 --work "$WORK/cud-runs" --out "$OUT/cud-validation" --force
        ;;
    concepts)
        # the audit reads the methods unlearned so far, and says which it has not
        audited=()
        for method in $audit_methods; do
            if [ -f "$WORK/$method/unlearn.json" ]; then audited+=("$method"); else echo "concepts: $method not unlearned yet ($WORK/$method), left out" >&2; fi
        done
        [ ${#audited[@]} -gt 0 ] || { echo "error: run the unlearning stage first (none of $audit_methods in $WORK)" >&2; exit 1; }
        mkdir -p "$OUT/concepts"
        # each forget10 author's 20 answers, a text the scan weighs against the other 19 authors'
        # and, for the noise validation, their 20 questions and 38 of the others' (two per author)
        python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def write(name, lines):
    with open("%s/%s.txt" % (sys.argv[2], name), "w") as f:
        f.write("\n".join(lines) + "\n")
for a in range(20):
    own = rows[20 * a:20 * a + 20]
    write("author-%02d" % a, [r["answer"] for r in own])
    write("author-%02d-questions" % a, [r["question"] for r in own])
    write("author-%02d-others" % a, [rows[20 * b + i]["question"] for b in range(20) if b != a for i in range(2)])' \
            "$TOFU/forget10.jsonl" "$WORK"
        # the chat prompt the models were fine-tuned with, {q} for the question (the x keeps the
        # template's final line break from $(...))
        template=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["settings"]["prompt_format"]["template"].replace("{question}", "{q}"), end="x")' "$WORK/original/finetune.json")
        template=${template%x}
        for a in $audit_authors; do
            others=()
            for b in $(seq -f %02g 0 19); do [ "$b" != "$a" ] && others+=("$WORK/author-$b.txt"); done
            "$CS" concepts "$WORK/original" --text "$WORK/author-$a.txt" --background "${others[@]}" \
                --out "$OUT/concepts/author-$a-scan.json" --svg "$OUT/concepts/author-$a-scan.svg" \
                | tee "$OUT/concepts/author-$a-scan.txt"
            read -r layer dim < <(python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["candidates"][0]["vector"]; print(v["layer"], v["dim"])' "$OUT/concepts/author-$a-scan.json")
            # is the vector the author's? noise on it (σ 1, the level that told concept from unrelated
            # in circuits/smollm2-concepts/) against the same noise's effect on other authors' questions
            if [ ! -f "$OUT/concepts/author-$a-noise.json" ]; then
                "$CS" concepts validate "$WORK/original" --layer "$layer" --dim "$dim" \
                    --questions "$WORK/author-$a-questions.txt" --unrelated "$WORK/author-$a-others.txt" \
                    --sigma 1 --seeds 8888 --max-new-tokens 40 --template "$template" \
                    --out "$OUT/concepts/author-$a-noise.json" | tee "$OUT/concepts/author-$a-noise.txt"
            fi
            for method in "${audited[@]}"; do
                "$CS" concepts audit "$WORK/original" --against "$WORK/$method" --layer "$layer" --dim "$dim" \
                    --text "$WORK/author-$a.txt" --out "$OUT/concepts/author-$a-$method.json" \
                    | tee "$OUT/concepts/author-$a-$method.txt"
            done
        done
        ;;
    *) echo "usage: bash scripts/tofu-smollm2.sh data | finetune | unlearning [--methods \"...\"] | table | cud | concepts" >&2; exit 2 ;;

esac
