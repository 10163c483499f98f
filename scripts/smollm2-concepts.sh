#!/usr/bin/env bash
# circuits/smollm2-concepts/: the ten concepts of ConceptVectors' LLaMA-2-7B dev split located in
# SmolLM2-135M-Instruct by the scan (`concepts --concepts FILE --concept NAME`: the concept's name
# and its article's most particular words against the other nine articles), and the best vector of
# each validated by noise on the concept's own questions against its unrelated ones (seed 8888, as
# the reference; σ = 0.1, the reference's, and σ = 1, noise several times the vector's norm).
# Then the concept whose vector the noise singles out most (σ = 1: the share of its answers
# changed less the share of unrelated answers changed) is unlearned three ways (grad-ascent, NPO,
# Needle on that vector): its questions with the original model's own answers as the forget set,
# the unrelated ones as the retain set; the vector is audited after each run.
# Resumable: finished files are kept. About 80 minutes on 2 CPU cores; then
# `bash scripts/smollm2-concepts.sh --table` prints the README's tables from the files. The
# unlearned checkpoints (540 MB each) stay under $UNLEARNED (target/smollm2-concepts).
#
#   bash scripts/smollm2-concepts.sh [--table]
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-target/release/circuitscope}
FILE=${FILE:-../shared/data/conceptvectors/llama2-7b_concepts_dev.json}
OUT=${OUT:-circuits/smollm2-concepts}
SIGMAS=(0.1 1)
[ -f "$FILE" ] || { echo "error: $FILE is missing (the ConceptVectors dev split)" >&2; exit 1; }
mkdir -p "$OUT"

if [ "${1:-}" != "--table" ]; then
    [ -x "$CS" ] || cargo build --release
    mapfile -t concepts < <(python3 -c "import json, sys; [print(e['Concept']) for e in json.load(open(sys.argv[1]))]" "$FILE")
    for i in "${!concepts[@]}"; do
        c=${concepts[$i]}
        slug=$(printf '%02d' "$i")
        [ -f "$OUT/find-$slug.json" ] || "$CS" concepts smollm2 --concepts "$FILE" --concept "$c" --candidates 5 \
            --out "$OUT/find-$slug.json" > "$OUT/find-$slug.txt"
        best=$(python3 -c "import json, sys; v = json.load(open(sys.argv[1]))['candidates'][0]['vector']; print(v['layer'], v['dim'])" "$OUT/find-$slug.json")
        read -r layer dim <<< "$best"
        for sigma in "${SIGMAS[@]}"; do
            f="$OUT/validate-$slug-$sigma.json"
            [ -f "$f" ] || "$CS" concepts validate smollm2 --layer "$layer" --dim "$dim" --concepts "$FILE" --concept "$c" \
                --sigma "$sigma" --seeds 8888 --out "$f" > /dev/null
        done
        echo "$c: L$layer.$dim done" >&2
    done

    UNLEARNED=${UNLEARNED:-target/smollm2-concepts}
    mkdir -p "$UNLEARNED"
    read -r pick layer dim < <(python3 - "$OUT" "$FILE" "$UNLEARNED" <<'PY'
import json, sys
out, file, work = sys.argv[1:4]
entries = json.load(open(file))
def changed(x):
    return sum(a["edited"][0] != a["original"] for a in x["answers"]) / len(x["answers"])
gaps = []
for i in range(len(entries)):
    v = json.load(open(f"{out}/validate-{i:02d}-1.json"))
    gaps.append((changed(v["concept"]) - changed(v["unrelated"]), -i, i, v))
_, _, i, v = max(gaps)
for name, s in (("forget", v["concept"]), ("retain", v["unrelated"])):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for a in s["answers"]:
            if a["original"].strip():
                f.write(json.dumps({"question": a["question"], "answer": a["original"].strip()}) + "\n")
open(f"{work}/article.txt", "w").write(entries[i]["wikipedia_content"])
print(i, v["vector"]["layer"], v["vector"]["dim"])
PY
)
    slug=$(printf '%02d' "$pick")
    for m in grad-ascent npo needle; do
        [ -f "$OUT/unlearn-$slug-$m.json" ] && continue
        extra=()
        if [ "$m" = needle ]; then extra=(--layer "$layer" --dim "$dim"); fi
        "$CS" unlearn smollm2 --forget "$UNLEARNED/forget.jsonl" --retain "$UNLEARNED/retain.jsonl" --method "$m" \
            --prompt-format $'Question: {question}\n Answer:' --no-end-token "${extra[@]}" --out "$UNLEARNED/$m" --force > /dev/null
        cp "$UNLEARNED/$m/unlearn.json" "$OUT/unlearn-$slug-$m.json"
        "$CS" concepts audit smollm2 --against "$UNLEARNED/$m" --layer "$layer" --dim "$dim" --text "$UNLEARNED/article.txt" \
            --out "$OUT/audit-$slug-$m.json" > /dev/null
        echo "unlearned concept $pick with $m" >&2
    done
    cp "$UNLEARNED/forget.jsonl" "$OUT/forget-$slug.jsonl"
    cp "$UNLEARNED/retain.jsonl" "$OUT/retain-$slug.jsonl"
fi

python3 - "$OUT" "$FILE" "${SIGMAS[@]}" <<'PY'
import json, sys
out, file, sigmas = sys.argv[1], sys.argv[2], sys.argv[3:]
entries = json.load(open(file))
head = "| concept | best vector (score) | its top tokens | ‖v‖ | empty answers |"
for s in sigmas:
    head += f" σ = {s}: BLEU | ROUGE-L | unchanged |"
print(head)
print("|---|---|---|---:|---:|" + "---:|---:|---:|" * len(sigmas))
for i, e in enumerate(entries):
    try:
        find = json.load(open(f"{out}/find-{i:02d}.json"))
    except FileNotFoundError:
        continue
    c = find["candidates"][0]
    v = c["vector"]
    toks = " ".join(repr(t["token"].strip()) for t in c["top_tokens"][:5])
    cells, norm, empty = [], "", ""
    for s in sigmas:
        try:
            val = json.load(open(f"{out}/validate-{i:02d}-{s}.json"))
        except FileNotFoundError:
            cells += ["–"] * 3
            continue
        norm = f"{val['vector_norm']:.2f}"
        sets = (val["concept"], val["unrelated"])
        empty = " / ".join(f"{sum(a['original'] == '' for a in x['answers'])}" for x in sets)
        pair = lambda f: " / ".join(f"{f(x):.2f}" for x in sets)
        unchanged = lambda x: sum(a["edited"][0] == a["original"] for a in x["answers"]) / len(x["answers"])
        cells += [pair(lambda x: x["bleu"][0]), pair(lambda x: x["rouge_l"][0]), pair(unchanged)]
    print(f"| {e['Concept']} | L{v['layer']}.{v['dim']} ({c['score']:.2f}) | {toks} | {norm} | {empty} | " + " | ".join(cells) + " |")
print("\nEach pair: the concept's questions / its unrelated ones. Empty answers: the original model ends its answer at once"
      " (BLEU and ROUGE-L score them 0 even when unchanged); unchanged: the share of answers the noise left exactly as they were.")
import glob, os
for path in sorted(glob.glob(f"{out}/audit-*-npo.json")):
    i = int(os.path.basename(path).split("-")[1])
    print(f"\nUnlearning {entries[i]['Concept']} (its questions with the original model's answers; the unrelated ones"
          " kept), then auditing the vector:\n")
    print("| method | forget answers: NLL/token, exact | retain answers: NLL/token, exact | cosine | ‖v − v'‖/‖v‖ | top-200 Jaccard | article tokens kept |")
    print("|---|---|---|---:|---:|---:|---:|")
    for m in ("grad-ascent", "npo", "needle"):
        try:
            u = json.load(open(f"{out}/unlearn-{i:02d}-{m}.json"))
            a = json.load(open(f"{out}/audit-{i:02d}-{m}.json"))["vectors"][0]["audit"]
        except FileNotFoundError:
            continue
        b, f = u["before"], u["after"]
        kept = "–" if a["concept_kept"] is None else f"{a['concept_kept']:.2f}"
        ret = "–" if b.get("retain_nll") is None else (
            f"{b['retain_nll']:.2f} → {f['retain_nll']:.2f}, {100 * b['retain_exact']:.0f} % → {100 * f['retain_exact']:.0f} %")
        print(f"| {m} | {b['forget_nll']:.2f} → {f['forget_nll']:.2f}, {100 * b['forget_exact']:.0f} % → "
              f"{100 * f['forget_exact']:.0f} % | {ret} | {a['cosine']:.3f} | {a['l2'] / a['norm']:.3f} | {a['jaccard']:.2f} | {kept} |")
PY
