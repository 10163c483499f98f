#!/usr/bin/env bash
# The README's concept-vector report on the bundled world: the value vectors whose projection
# names one invented person (Xara Kestrel, of forget10), checked by noise on her questions against
# other people's, then her answers unlearned with gradient ascent, NPO and Needle, and each vector
# audited against the behavioural forgetting. Prints markdown; the runs stay under $OUT (default
# target/concepts-world). About a minute on 2 CPU cores.
#
#   bash scripts/concepts-world.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-target/release/circuitscope}
OUT=${OUT:-target/concepts-world}
[ -x "$CS" ] || cargo build --release
W=circuits/world
ORIG=models/world-gpt2
PERSON="Xara Kestrel"
mkdir -p "$OUT"
grep "\"person\":\"$PERSON\"" "$W/forget10.jsonl" > "$OUT/forget.jsonl"
grep -v "\"person\":\"$PERSON\"" "$W/forget10.jsonl" | head -40 > "$OUT/others.jsonl"
TEMPLATE=$'Question: {q}\nAnswer:'

"$CS" concepts "$ORIG" --find "$PERSON" --candidates 5 --out "$OUT/find.json" > /dev/null
read -r -a vectors <<< "$(python3 -c "
import json, sys
print(' '.join(f\"{c['vector']['layer']}:{c['vector']['dim']}\" for c in json.load(open(sys.argv[1]))['candidates'][:3]))" "$OUT/find.json")"

for v in "${vectors[@]}"; do
    for sigma in 0.1 10; do
        "$CS" concepts validate "$ORIG" --layer "${v%:*}" --dim "${v#*:}" --questions "$OUT/forget.jsonl" \
            --unrelated "$OUT/others.jsonl" --template "$TEMPLATE" --max-new-tokens 24 --sigma "$sigma" \
            --out "$OUT/validate-$v-$sigma.json" > /dev/null
    done
done

best=${vectors[0]}
"$CS" unlearn "$ORIG" --forget "$OUT/forget.jsonl" --method grad-ascent --out "$OUT/grad-ascent" --force > /dev/null
"$CS" unlearn "$ORIG" --forget "$OUT/forget.jsonl" --retain "$W/retain90.jsonl" --limit 20 --method npo \
    --out "$OUT/npo" --force > /dev/null
"$CS" unlearn "$ORIG" --forget "$OUT/forget.jsonl" --method needle --layer "${best%:*}" --dim "${best#*:}" --epochs 1 \
    --out "$OUT/needle" --force > /dev/null
for m in grad-ascent npo needle; do
    for v in "${vectors[@]}"; do
        "$CS" concepts audit "$ORIG" --against "$OUT/$m" --layer "${v%:*}" --dim "${v#*:}" --terms "$PERSON" \
            --out "$OUT/audit-$m-$v.json" > /dev/null
    done
done

python3 - "$OUT" "${vectors[@]}" <<'PY'
import json, sys
out, vectors = sys.argv[1], sys.argv[2:]
find = json.load(open(f"{out}/find.json"))
print("Candidates (`concepts --find \"Xara Kestrel\"`):\n")
print("| vector | score | overlap | top tokens |")
print("|---|---:|---:|---|")
for c in find["candidates"]:
    v = c["vector"]
    toks = " ".join(repr(t["token"]) for t in c["top_tokens"][:6])
    print(f"| L{v['layer']}.{v['dim']} | {c['score']:.2f} | {c['overlap']}/200 | {toks} |")
print("\nNoise on each vector (3 seeds, 24 new tokens): mean BLEU / ROUGE-L F of the edited model's answers"
      " against the original's, on her 20 questions and on 40 of other people's:\n")
print("| vector | ‖v‖ | σ | her questions | other people's |")
print("|---|---:|---:|---|---|")
for v in vectors:
    for sigma in ("0.1", "10"):
        r = json.load(open(f"{out}/validate-{v}-{sigma}.json"))
        m = lambda s: sum(s) / len(s)
        c, u = r["concept"], r["unrelated"]
        print(f"| L{v.replace(':', '.')} | {r['vector_norm']:.3f} | {sigma} | {m(c['bleu']):.3f} / {m(c['rouge_l']):.3f} "
              f"| {m(u['bleu']):.3f} / {m(u['rouge_l']):.3f} |")
print("\nUnlearning her 20 answers, then auditing the vectors (cosine, ‖v − v'‖/‖v‖, top-200 Jaccard, her"
      " name's tokens kept in the top 200):\n")
print("| method | her answers: NLL/token, exact | " + " | ".join(f"L{v.replace(':', '.')}" for v in vectors) + " |")
print("|---|---|" + "---|" * len(vectors))
for m in ("grad-ascent", "npo", "needle"):
    u = json.load(open(f"{out}/{m}/unlearn.json"))
    b, a = u["before"], u["after"]
    cells = []
    for v in vectors:
        r = json.load(open(f"{out}/audit-{m}-{v}.json"))["vectors"][0]["audit"]
        kept = "-" if r["concept_kept"] is None else f"{r['concept_kept']:.2f}"
        cells.append(f"{r['cosine']:.3f}, {r['l2'] / r['norm']:.3f}, {r['jaccard']:.2f}, {kept}")
    print(f"| {m} | {b['forget_nll']:.3f} → {a['forget_nll']:.3f}, {100 * b['forget_exact']:.0f} % → "
          f"{100 * a['forget_exact']:.0f} % | " + " | ".join(cells) + " |")
PY
