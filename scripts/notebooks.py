"""Runs the notebooks of notebooks/ top to bottom against the package built from this checkout.

    python scripts/notebooks.py --check [NAME…]   run each; fail on any cell error or on outputs
                                                  that differ from the committed ones
    python scripts/notebooks.py --write [NAME…]   run each and commit its outputs into the file

Run through scripts/notebooks.sh, which builds the package first (tests/notebooks.rs does).
Outputs are compared text against text, numbers within a relative 1e-3 (the same runs give the
same bits on one machine; this spares a last printed digit on another CPU). A cell tagged
`needs-smollm2` whose output says SmolLM2 was not available is not compared (where the model
cannot be fetched the notebook still runs); the check says so.
"""

import argparse
import math
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
UNAVAILABLE = "SmolLM2 is not available"


def outputs(cell):
    """A code cell's outputs as comparable text: streams (each joined), results and displays (by MIME type)."""
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            kind = "stream " + o["name"]
            # a stream is cut into outputs wherever the kernel happened to flush: join them
            if out and out[-1][0] == kind:
                out[-1] = (kind, out[-1][1] + o["text"])
            else:
                out.append((kind, o["text"]))
        elif o["output_type"] in ("execute_result", "display_data"):
            for mime in sorted(o["data"]):
                text = o["data"][mime]
                out.append((mime, text if isinstance(text, str) else "".join(text)))
        elif o["output_type"] == "error":
            out.append(("error", o["ename"] + ": " + o["evalue"]))
    return out


def same_text(a, b):
    """Equal apart from numbers, and numbers equal within a relative 1e-3."""
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        fx, fy = float(x), float(y)
        if not math.isclose(fx, fy, rel_tol=1e-3, abs_tol=1e-6):
            return False
    return True


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines())):
        if not same_text(x, y):
            return f"line {i + 1}:\n      committed: {x[:200]}\n      now:       {y[:200]}"
    return f"{len(a.splitlines())} lines committed, {len(b.splitlines())} now"


def execute(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def check(path):
    committed = nbformat.read(path, as_version=4)
    ran = execute(path)
    problems = []
    for i, (c, r) in enumerate(zip(committed.cells, ran.cells)):
        if c.cell_type != "code":
            continue
        now, then = outputs(r), outputs(c)
        if "needs-smollm2" in c.metadata.get("tags", []) and any(UNAVAILABLE in t for _, t in now):
            print(f"  {path.name} cell {i}: SmolLM2 is not available here; its outputs are not compared", file=sys.stderr)
            continue
        if [k for k, _ in now] != [k for k, _ in then]:
            problems.append(f"cell {i}: outputs {[k for k, _ in then]} committed, {[k for k, _ in now]} now")
            continue
        for (kind, a), (_, b) in zip(then, now):
            if not same_text(a, b):
                problems.append(f"cell {i} ({kind}) differs at {first_difference(a, b)}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    ap.add_argument("names", nargs="*", help="notebook file names (default: every notebook)")
    a = ap.parse_args()
    paths = [NOTEBOOKS / n for n in a.names] if a.names else sorted(NOTEBOOKS.glob("*.ipynb"))
    failed = False
    for p in paths:
        print(f"{p.name}: running", file=sys.stderr, flush=True)
        if a.write:
            nb = execute(p)
            for cell in nb.cells:
                cell.metadata.pop("execution", None)
            nbformat.write(nb, p)
            print(f"{p.name}: outputs written", file=sys.stderr)
            continue
        try:
            problems = check(p)
        except Exception as e:  # a cell raised: nbclient's CellExecutionError names the cell and the traceback
            print(f"{p.name}: FAILED\n{e}", file=sys.stderr)
            failed = True
            continue
        if problems:
            failed = True
            print(f"{p.name}: the outputs differ from the committed ones (regenerate with scripts/notebooks.sh --write):", file=sys.stderr)
            for q in problems:
                print("  " + q, file=sys.stderr)
        else:
            print(f"{p.name}: ran top to bottom; outputs as committed", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
