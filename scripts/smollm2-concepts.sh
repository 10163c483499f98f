#!/usr/bin/env bash
# circuits/smollm2-concepts/: the ten concepts of ConceptVectors' LLaMA-2-7B dev split located in
# SmolLM2-135M-Instruct by the scan (`concepts --concepts FILE --concept NAME`: the concept's name
# and its article's most particular words against the other nine articles), and the best vector of
# each validated by noise on the concept's own questions against its unrelated ones (seed 8888, as
# the reference; σ = 0.1, the reference's, and σ = 1, noise several times the vector's norm).
# Resumable: a concept's finished files are kept. About an hour on 2 CPU cores; then
# `bash scripts/smollm2-concepts.sh --table` prints the README's table from the files.
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
PY
