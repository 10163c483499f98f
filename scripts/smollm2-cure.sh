#!/usr/bin/env bash
# circuits/smollm2-cure/: CURE against NPO on SmolLM2-135M-Instruct with the ROME facts of
# circuits/smollm2-unlearn (20 to forget, 100 to keep; the fact's prompt, no end token). The
# partition: EAP node scores on both sets, each set's 30 highest of the 300 modules. Then NPO and
# CURE (NPO on the forget-specific modules) at their documented settings. The checkpoints stay
# under $WORK (target/smollm2-cure).
#
#   bash scripts/smollm2-cure.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-target/release/circuitscope}
OUT=circuits/smollm2-cure
WORK=${WORK:-target/smollm2-cure}
D=circuits/smollm2-unlearn
[ -x "$CS" ] || cargo build --release
mkdir -p "$OUT" "$WORK"
common=(--forget "$D/forget.jsonl" --retain "$D/retain.jsonl" --prompt-format '{question}' --no-end-token)
"$CS" cure smollm2 "${common[@]}" --attribution eap --top-k 30 --out "$OUT/partition.json" --svg "$OUT/partition.svg" \
    | tee "$OUT/partition.txt"
for m in npo cure; do
    extra=()
    if [ "$m" = cure ]; then extra=(--partition "$OUT/partition.json"); fi
    "$CS" unlearn smollm2 "${common[@]}" --method "$m" "${extra[@]}" --out "$WORK/$m" --force | tee "$OUT/unlearn-$m.txt"
    cp "$WORK/$m/unlearn.json" "$OUT/unlearn-$m.json"
done
