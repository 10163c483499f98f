#!/usr/bin/env bash
# The README's unlearning table: on the bundled world, for forget10 and forget01, the original
# model, its retain model and each method at its documented settings, evaluated by
# `circuitscope eval-unlearning` against the retain model. Prints a markdown table; the runs and
# evaluations stay under $OUT (default target/unlearning-results).
#
#   bash scripts/unlearning-results.sh [--methods "grad-diff npo"] [--splits "forget10"]
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-target/release/circuitscope}
OUT=${OUT:-target/unlearning-results}
methods="grad-ascent grad-diff npo simnpo rmu"
splits="forget10 forget01"
while [ $# -gt 0 ]; do
    case $1 in
        --methods) methods=$2; shift 2 ;;
        --splits) splits=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$CS" ] || cargo build --release
W=circuits/world
ORIG=models/world-gpt2
RETAIN_MODEL=models/world-gpt2-retain90
mkdir -p "$OUT"

# the retain split that goes with a forget split
retain_of() { case $1 in forget01) echo retain99 ;; forget05) echo retain95 ;; forget10) echo retain90 ;; esac; }

evaluate() { # model out forget
    "$CS" eval-unlearning "$1" --forget "$W/$3.jsonl" --retain "$W/retain_perturbed.jsonl" \
        --holdout "$W/holdout.jsonl" --real-authors "$W/real_authors_perturbed.jsonl" \
        --world-facts "$W/world_facts_perturbed.jsonl" --retain-model "$RETAIN_MODEL" --out "$2" --force >/dev/null
}

row() { # label split summary.json seconds
    python3 - "$@" <<'EOF'
import json, sys
label, split, path, secs = sys.argv[1:5]
s = json.load(open(path))
f = lambda x: "-" if x is None else ("%.3g" % x)
print(f"| {split} | {label} | {f(s['forget_quality'])} | {f(s['model_utility'])} | {f(s['forget']['probability'])} "
      f"| {f(s['retain']['probability'])} | {f(s['forget']['rouge_l_recall'])} | {f(s['mia_auc']['min_k_plus_plus'])} | {secs} |")
EOF
}

echo "| split | model | forget quality | model utility | forget prob. | retain prob. | forget ROUGE-L | Min-k%++ AUC | unlearning time |"
echo "|---|---|---|---|---|---|---|---|---|"
for split in $splits; do
    retain=$(retain_of "$split")
    for m in original retain; do
        model=$ORIG; [ $m = retain ] && model=$RETAIN_MODEL
        evaluate "$model" "$OUT/$split-$m-eval" "$split"
        row "$m model" "$split" "$OUT/$split-$m-eval/summary.json" "-"
    done
    for method in $methods; do
        "$CS" unlearn "$ORIG" --forget "$W/$split.jsonl" --retain "$W/$retain.jsonl" --method "$method" \
            --out "$OUT/$split-$method" --force >/dev/null
        secs=$(python3 -c "import json,sys; print('%.0f s' % json.load(open(sys.argv[1]))['seconds'])" "$OUT/$split-$method/unlearn.json")
        evaluate "$OUT/$split-$method" "$OUT/$split-$method-eval" "$split"
        row "$method" "$split" "$OUT/$split-$method-eval/summary.json" "$secs"
    done
done
