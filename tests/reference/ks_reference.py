"""Reference values for circuitscope's two-sample Kolmogorov-Smirnov test (TOFU's forget
quality is its p-value): scipy.stats.ks_2samp with its defaults (two-sided, method 'auto', which
is the exact distribution at these sizes). Prints Rust tuples that tests/unlearn.rs holds.

    pip install scipy && python3 tests/reference/ks_reference.py
"""

import scipy
from scipy.stats import ks_2samp


def sample(seed, n, shift):
    # a fixed LCG, so the Rust test can draw the same numbers
    x, out = seed, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append((x >> 11) / 2**53 + shift)
    return out


CASES = [(1, 5, 2, 6, 0.0), (3, 20, 4, 20, 0.0), (5, 40, 6, 40, 0.3), (7, 37, 8, 55, 0.15), (9, 200, 10, 200, 0.25)]
print(f"// scipy {scipy.__version__}: (seed_a, n_a, seed_b, n_b, shift of b, statistic, p-value)")
for sa, na, sb, nb, shift in CASES:
    r = ks_2samp(sample(sa, na, 0.0), sample(sb, nb, shift))
    print(f"({sa}, {na}, {sb}, {nb}, {shift}, {float(r.statistic)!r}, {float(r.pvalue)!r}),")
