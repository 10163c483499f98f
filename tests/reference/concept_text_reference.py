"""BLEU and ROUGE-L as the ConceptVectors reference scores generations, from the packages it uses.

ConceptVectors (yihuaihong/ConceptVectors) compares an edited model's greedy answer with the
original model's: nltk 3.8.1 `sentence_bleu([reference.split()], candidate.split(),
smoothing_function=SmoothingFunction().method3)` and the `rouge` 1.0.1 package's
`Rouge().get_scores(candidate, reference)[0]["rouge-l"]["f"]` (0.0 where it raises), with the edited
answer as the reference. This writes pairs of texts (answers varied by deletions, swaps,
repetitions, sentence breaks, empty and whitespace-only texts) and both scores to
tests/fixtures/concepts/text_scores.json, which tests/concepts.rs checks
`analyses::concepts::text_match` against.

    pip install --target /tmp/cvref rouge==1.0.1 nltk==3.8.1
    PYTHONPATH=/tmp/cvref python3 tests/reference/concept_text_reference.py

Needs Python <= 3.11: nltk 3.8.1 builds `Fraction(..., _normalize=False)`, which later Pythons
refuse, and method 3's smoothing reads the unnormalised denominators.
"""

import json
import os
import random

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge import Rouge

BASE = [
    "The capital city of Poland is Warsaw. It is also the largest city in the country.",
    "Warsaw is the capital of Poland, and the official language is Polish.",
    "The currency used in Poland is the Polish zloty (PLN).",
    "Pierogi are the national dish of Poland. They are dumplings filled with potatoes, cheese or meat.",
    "William Shakespeare wrote Hamlet, Macbeth and Romeo and Juliet. He was born in Stratford-upon-Avon in 1564.",
    "TensorFlow is an open-source machine learning library developed by Google Brain.",
    "The Leaning Tower is located in Pisa, Italy. Pasta and pizza are often associated with Italy.",
    "Baseball is played between two teams of nine players each, who take turns batting and fielding.",
    "I'm sorry, I don't have information about that. Could you please provide more context?",
    "the the the the the",
    "A. B. C. D.",
    "Answer: 42",
]


def variants(text, rng):
    words = text.split()
    out = [text, text.lower(), " ".join(reversed(words))]
    for _ in range(4):
        w = list(words)
        for _ in range(rng.randint(1, max(1, len(w) // 3))):
            op = rng.choice(["del", "swap", "dup", "dot", "sub"])
            i = rng.randrange(len(w)) if w else 0
            if not w:
                break
            if op == "del":
                w.pop(i)
            elif op == "swap" and len(w) > 1:
                j = rng.randrange(len(w))
                w[i], w[j] = w[j], w[i]
            elif op == "dup":
                w.insert(i, w[i])
            elif op == "dot":
                w[i] = w[i] + "."
            else:
                w[i] = rng.choice(["Poland", "is", "the", "a", "city", "zloty", "and", "of"])
        out.append(" ".join(w))
    out.append(words[0] if words else "")
    out.append(" ".join(words[: max(1, len(words) // 2)]))
    return out


def rouge_f(reference, candidate):
    try:
        return Rouge().get_scores(candidate, reference)[0]["rouge-l"]["f"]
    except Exception:
        return 0.0


def main():
    rng = random.Random(2024)
    pairs = []
    for text in BASE:
        for v in variants(text, rng):
            pairs.append((text, v))
            pairs.append((v, text))
    for a, b in zip(BASE, BASE[1:]):
        pairs.append((a, b))
    pairs += [("", "Warsaw"), ("Warsaw", ""), ("", ""), ("   ", "a b"), ("a b", " . "), ("...", "a"),
              ("a b c", "a b c"), ("a", "a"), ("x. y.", "x y"), ("Warsaw.  Poland .", "Poland. Warsaw")]
    cases = [{"reference": r, "candidate": c,
              "bleu": sentence_bleu([r.split()], c.split(), smoothing_function=SmoothingFunction().method3),
              "rouge_l_f": rouge_f(r, c)} for r, c in pairs]
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "concepts", "text_scores.json")
    with open(out, "w") as f:
        json.dump({"nltk": "3.8.1", "rouge": "1.0.1", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
