#!/usr/bin/env bash
# Regenerates the committed circuits of the bundled tasks (circuits/<task>/) with the CLI:
# EAP-IG (inputs, m = 5) on the first 64 items, a greedy circuit of 24 edges (5 % of the bundled
# model's 479), pruned, its drawing, and the faithfulness sweep (top-n) with its curve.
# Run from the repository root:  bash circuits/regenerate.sh
set -euo pipefail
cs() { cargo run --release --quiet -- "$@"; }
for task in ioi induction fact_recall; do
  out=circuits/$task
  mkdir -p "$out"
  cs attribute models/world-gpt2 --data circuits/world/tasks/$task.jsonl --method eap-ig-inputs --steps 5 \
    --limit 64 --out "$out/scores.json"
  cs circuit "$out/scores.json" --greedy 24 --out "$out/circuit.json" --svg "$out/circuit.svg" --dot "$out/circuit.dot" \
    --title "$task: EAP-IG greedy circuit, bundled model"
  cs evaluate models/world-gpt2 --data circuits/world/tasks/$task.jsonl --circuit "$out/scores.json" --sweep \
    --limit 64 --out "$out/faithfulness.json" --svg "$out/faithfulness.svg"
done
