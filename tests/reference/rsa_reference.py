#!/usr/bin/python3
"""Reference numbers for the rsa tests, re-implementing THINGSvision / rsatoolbox with numpy+scipy.

  rsa_reference.py fixture OUTDIR      inputs (npy) + reference RDMs (npy) + scalars.txt
  rsa_reference.py load_rdm FILE.h5 OUT.npy   rsatoolbox's io/hdf5.py + rdms_from_dict, re-implemented
                     with h5py; prints what rsatoolbox.rdm.load_rdm would see, saves the matrices

THINGSvision (core/rsa/helpers.py, core/cka/numpy.py) definitions; see docs/rsa.md.
"""
import json
import os
import sys

import numpy as np
from scipy.spatial.distance import pdist, squareform
from scipy import stats

METHODS = ["correlation", "cosine", "euclidean", "gaussian", "sqeuclidean"]


def rdm(x, method):
    """THINGSvision's compute_rdm (+ rsatoolbox's euclidean as sqeuclidean), via scipy pdist."""
    x = np.asarray(x, dtype=np.float64)
    if method in ("correlation", "cosine", "euclidean"):
        with np.errstate(invalid="ignore", divide="ignore"):
            d = pdist(x, method)
        if method != "euclidean":
            d = 1.0 - np.clip(1.0 - d, -1.0, 1.0)  # THINGSvision clips r to [-1, 1]
        m = squareform(d, checks=False)
    elif method == "sqeuclidean":
        m = squareform(pdist(x, "sqeuclidean")) / x.shape[1]
    elif method == "gaussian":
        d2 = squareform(pdist(x, "sqeuclidean"))
        m = 1.0 - np.exp(-d2 / d2.mean())  # mean over all n^2 entries, zero diagonal included
    np.fill_diagonal(m, 0.0)  # our documented choice: the diagonal is 0 even for NaN rows
    return m


def upper(m):
    return m[np.triu_indices(m.shape[0], k=1)]


def correlate(a, b, method):
    """THINGSvision's correlate_rdms (strict upper triangle, scipy.stats) + rsatoolbox's cosine;
    pairs where either is NaN are dropped."""
    va, vb = upper(a), upper(b)
    keep = ~(np.isnan(va) | np.isnan(vb))
    va, vb = va[keep], vb[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "pearson":
            return stats.pearsonr(va, vb)[0]
        if method == "spearman":
            return stats.spearmanr(va, vb)[0]
        if method == "kendall":
            return stats.kendalltau(va, vb)[0]  # tau-b
        if method == "cosine":
            return va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb))
    raise ValueError(method)


def centering(k, unbiased):
    """THINGSvision CKANumPy.centering (Kornblith's notebook)."""
    k = k.copy()
    n = k.shape[0]
    if unbiased:
        np.fill_diagonal(k, 0)
        means = np.sum(k, axis=0, dtype=np.float64) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        kc = k - means[:, None] - means[None, :]
        np.fill_diagonal(kc, 0)
        return kc
    means = np.mean(k, axis=0, dtype=np.float64)
    means -= np.mean(means) / 2
    return k - means[:, None] - means[None, :]


def kernel(x, kind, sigma):
    x = np.asarray(x, dtype=np.float64)
    if kind == "linear":
        return x @ x.T
    d2 = squareform(pdist(x, "sqeuclidean"))  # = THINGSvision's diag(G) - G + (diag(G) - G).T
    if sigma is None:
        sigma = np.sqrt(np.median(d2[d2 != 0]))
    return np.exp(-0.5 * d2 / (sigma * sigma))


def cka(x, y, kind, unbiased, sigma):
    kx = centering(kernel(x, kind, sigma), unbiased)
    ky = centering(kernel(y, kind, sigma), unbiased)
    hxy, hxx, hyy = np.sum(kx * ky), np.sum(kx * kx), np.sum(ky * ky)
    return hxy / np.sqrt(hxx * hyy)


def datasets(rng):
    """name -> features; float32 where the C++ test feeds float32."""
    data = {}
    data["random"] = rng.standard_normal((40, 30))
    data["relu"] = np.maximum(rng.standard_normal((50, 64)) - 0.5, 0).astype(np.float32)
    ties = rng.integers(0, 3, size=(30, 8)).astype(np.float64)
    ties[5] = ties[0]  # duplicate rows
    ties[7] = ties[1]
    ties[20] = ties[1]
    ties[10] = 1.0  # zero variance: NaN correlation dissimilarities
    data["ties"] = ties
    data["small"] = rng.standard_normal((3, 5))
    data["small4"] = rng.standard_normal((4, 6))
    base = rng.standard_normal((60, 20))
    data["near"] = base[rng.integers(0, 20, size=60)] + 1e-7 * rng.standard_normal((60, 20))  # near-duplicates
    data["offset"] = 1e3 + rng.standard_normal((25, 16))  # large common offset
    return data


def fixture(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240601)
    data = datasets(rng)
    scalars = {}
    rdms = {}
    for name, x in data.items():
        np.save(os.path.join(out, f"{name}_x.npy"), x)
        for method in METHODS:
            m = rdm(x, method)
            rdms[(name, method)] = m
            np.save(os.path.join(out, f"{name}_{method}.npy"), m)
    # RDM correlations: correlation RDM against euclidean RDM of the same data, plus tie-heavy pairs
    pairs = {name: (rdms[(name, "correlation")], rdms[(name, "euclidean")]) for name in data}
    ties = data["ties"]
    category = (ties[:, 0][:, None] != ties[:, 0][None, :]).astype(np.float64)  # categorical 0/1 RDM
    pairs["categorical"] = (category, np.round(rdms[("ties", "euclidean")]))
    np.save(os.path.join(out, "categorical_a.npy"), pairs["categorical"][0])
    np.save(os.path.join(out, "categorical_b.npy"), pairs["categorical"][1])
    for name, (a, b) in pairs.items():
        for method in ("pearson", "spearman", "kendall", "cosine"):
            scalars[f"corr_{name}_{method}"] = correlate(a, b, method)
    # CKA: X against a noisy non-linear function of X
    for name in ("random", "relu", "ties", "small4"):
        x = np.asarray(data[name], dtype=np.float64)
        y = np.maximum(x @ rng.standard_normal((x.shape[1], 12)), 0) + 0.1 * rng.standard_normal((x.shape[0], 12))
        np.save(os.path.join(out, f"{name}_y.npy"), y)
        for kind, sigma, tag in (("linear", 1.0, "linear"), ("rbf", 1.0, "rbf1"), ("rbf", 3.0, "rbf3"),
                                 ("rbf", None, "rbfmedian")):
            for unbiased in (False, True):
                key = f"cka_{name}_{tag}_{'unbiased' if unbiased else 'biased'}"
                scalars[key] = cka(x, y, kind, unbiased, sigma)
    # average ranks on a tie-heavy vector
    v = np.round(rng.standard_normal(200), 1)
    np.save(os.path.join(out, "rank_input.npy"), v)
    np.save(os.path.join(out, "rank_output.npy"), stats.rankdata(v, method="average"))
    v = np.round(rng.standard_normal(30000), 2)  # > 4096 per thread: ties across sorted chunks
    np.save(os.path.join(out, "rank_input_large.npy"), v)
    np.save(os.path.join(out, "rank_output_large.npy"), stats.rankdata(v, method="average"))
    # center / normalize features (THINGSvision helpers)
    x = data["random"].copy()
    np.save(os.path.join(out, "centered.npy"), x - x.mean(axis=0))
    np.save(os.path.join(out, "normalized.npy"), x / np.linalg.norm(x, axis=1)[:, None])
    with open(os.path.join(out, "scalars.txt"), "w") as f:
        for key, value in scalars.items():
            f.write(f"{key} {float(value)!r}\n")


def load_rdm(path, matrices_out):
    """rsatoolbox io/hdf5.py read_dict_hdf5 + rdm/rdms.py rdms_from_dict, re-implemented."""
    import h5py

    def read_group(group):
        d = {}
        for key in group.keys():
            if isinstance(group[key], h5py.Group):
                d[key] = read_group(group[key])
            elif group[key].shape is None:
                d[key] = None
            else:
                d[key] = np.array(group[key])
                if d[key].dtype.type is np.bytes_:
                    d[key] = np.array(group[key]).astype("unicode")
        for key in group.attrs.keys():
            d[key] = group.attrs[key]
        return d

    with h5py.File(path, "r") as f:
        rdm_dict = read_group(f)
    diss = rdm_dict["dissimilarities"]
    # rsatoolbox.util.rdm_utils.batch_to_vectors: 2-D (n_rdm, n_pairs) stays as it is
    assert diss.ndim == 2, diss.shape
    n_cond = int(round((1 + np.sqrt(1 + 8 * diss.shape[1])) / 2))
    assert n_cond * (n_cond - 1) // 2 == diss.shape[1]
    measure = rdm_dict["dissimilarity_measure"]
    assert isinstance(measure, str), type(measure)  # h5py gives str for variable-length UTF-8
    pattern = rdm_dict["pattern_descriptors"]
    assert list(pattern["index"]) == list(range(n_cond))
    assert list(rdm_dict["rdm_descriptors"]["index"]) == list(range(diss.shape[0]))
    assert isinstance(rdm_dict["descriptors"], dict)
    matrices = np.stack([squareform(v, checks=False) for v in diss])  # batch_to_matrices
    np.save(matrices_out, matrices)
    print(json.dumps({
        "measure": measure,
        "version": str(rdm_dict["rsatoolbox_version"]),
        "n_rdm": int(diss.shape[0]),
        "n_cond": n_cond,
        "dtype": str(diss.dtype),
        "conditions": [str(c) for c in pattern.get("conditions", [])],
    }))


if __name__ == "__main__":
    if sys.argv[1] == "fixture":
        fixture(sys.argv[2])
    elif sys.argv[1] == "load_rdm":
        load_rdm(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
