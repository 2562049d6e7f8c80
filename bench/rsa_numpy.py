#!/usr/bin/python3
"""numpy/scipy side of bench/rsa_bench.cpp: the same operations on the same data, as THINGSvision
(core/rsa/helpers.py, core/cka/numpy.py) and rsatoolbox do them, in float64.

  rsa_numpy.py X.npy Y.npy   prints one line per operation: name seconds peak_extra_bytes value
"""
import sys
import time

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist, squareform


def rss_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def measure(name, fn):
    """Runs fn; prints wall time and the peak resident memory above the level before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    base = rss_bytes("VmRSS")
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    peak = rss_bytes("VmHWM") - base
    summary = float(np.nansum(value)) if isinstance(value, np.ndarray) else float(value)
    print(f"{name} {seconds:.4f} {peak} {summary!r}", flush=True)
    return value


def correlation_rdm(x):  # THINGSvision: rows centred, Gram, normalised, clipped
    x = x.astype(np.float64)
    xc = x - x.mean(axis=1, keepdims=True)
    g = xc @ xc.T
    norms = np.sqrt(np.diag(g))
    return 1.0 - np.clip(g / np.outer(norms, norms), -1.0, 1.0)


def cosine_rdm(x):
    x = x.astype(np.float64)
    g = x @ x.T
    norms = np.sqrt(np.diag(g))
    return 1.0 - np.clip(g / np.outer(norms, norms), -1.0, 1.0)


def euclidean_rdm(x):  # THINGSvision: squareform(pdist(X, "euclidean"))
    return squareform(pdist(x.astype(np.float64), "euclidean"))


def gaussian_rdm(x):  # THINGSvision's numba loop, here with scipy's C loop
    d2 = squareform(pdist(x.astype(np.float64), "sqeuclidean"))
    return 1.0 - np.exp(-d2 / d2.mean())


def sqeuclidean_rdm(x):  # rsatoolbox calc_rdm_euclidean: Gram trick / P
    x = x.astype(np.float64)
    g = x @ x.T
    d = np.diag(g)
    return (d[:, None] + d[None, :] - 2 * g) / x.shape[1]


def spearman(a, b):  # THINGSvision correlate_rdms(..., "spearman")
    iu = np.triu_indices(a.shape[0], k=1)
    return stats.spearmanr(a[iu], b[iu])[0]


def linear_cka(x, y):  # THINGSvision CKANumPy.linear_CKA (biased): three HSICs, six Grams
    x = x.astype(np.float64)
    y = y.astype(np.float64)

    def centering(k):
        means = np.mean(k, 0, dtype=np.float64)
        means -= np.mean(means) / 2
        k -= means[:, None]
        k -= means[None, :]
        return k

    def hsic(a, b):
        return np.sum(centering(a @ a.T) * centering(b @ b.T))

    return hsic(x, y) / np.sqrt(hsic(x, x) * hsic(y, y))


def main():
    x = np.load(sys.argv[1])
    y = np.load(sys.argv[2])
    rdms = {}
    for name, fn in (("rdm_correlation", correlation_rdm), ("rdm_cosine", cosine_rdm),
                     ("rdm_euclidean", euclidean_rdm), ("rdm_gaussian", gaussian_rdm),
                     ("rdm_sqeuclidean", sqeuclidean_rdm)):
        r = measure(name, lambda: fn(x))
        if name == "rdm_correlation":
            rdms["x"] = r
        del r
    rdms["y"] = correlation_rdm(y)
    measure("spearman", lambda: spearman(rdms["x"], rdms["y"]))
    rdms.clear()
    measure("linear_cka", lambda: linear_cka(x, y))


if __name__ == "__main__":
    main()
