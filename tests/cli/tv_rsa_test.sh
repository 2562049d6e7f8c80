# tv_rsa_test.sh — tv-rsa end to end: rdm (npy/hdf5 in, npy/rsatoolbox-hdf5/png out), compare
# (npy/mat/hdf5, square/vector, NaN, many-vs-many, statistics), cka; exit codes and messages.
# Environment (tests/rsa/rsa.cmake): TV_RSA TV_PYTHON TV_SOURCE_DIR.
set -euo pipefail
for v in TV_RSA TV_PYTHON TV_SOURCE_DIR; do [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set" >&2; exit 1; }; done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tv_rsa.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
REF="$TV_SOURCE_DIR/tests/reference/rsa_reference.py"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() {  # run CODE cmd...: stdout → $WORK/out, stderr → $WORK/err, checks the exit code
  local code=$1 rc=0; shift
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [[ $rc == "$code" ]] || { cat "$WORK/out" "$WORK/err" >&2; fail "exit $rc, expected $code: $*"; }
}
expect_error() {  # expect_error CODE TEXT cmd...: one stderr line containing TEXT
  local code=$1 text=$2; shift 2
  run "$code" "$@"
  grep -qF -- "$text" "$WORK/err" || { cat "$WORK/err" >&2; fail "stderr lacks '$text'"; }
  [[ $(wc -l <"$WORK/err") == 1 ]] || { cat "$WORK/err" >&2; fail "stderr is not one line"; }
}
close() {  # close GOT REF: relative difference <= 1e-9
  "$TV_PYTHON" -c "import sys; g, r = float('$1'), float('$2'); sys.exit(0 if abs(g - r) <= 1e-9 * abs(r) else 1)" ||
    fail "value $1 differs from reference $2"
}

# features as tv-extract writes them: conv-like rows (20×3×2×2, flattened to 12), npy + hdf5 + mat
"$TV_PYTHON" - "$WORK" <<'PY'
import sys, numpy as np, h5py, scipy.io
from scipy.spatial.distance import pdist, squareform
w = sys.argv[1]
rng = np.random.default_rng(5)
x = np.maximum(rng.standard_normal((20, 3, 2, 2)), 0).astype(np.float32)
y = (x.reshape(20, -1) @ rng.standard_normal((12, 7))).astype(np.float32)
np.save(f"{w}/x.npy", x)
with h5py.File(f"{w}/y.h5", "w") as f:
    f["features"] = y
scipy.io.savemat(f"{w}/y.mat", {"features": y})
a = squareform(pdist(x.reshape(20, -1).astype(np.float64), "correlation"))
b = squareform(pdist(y.astype(np.float64), "euclidean"))
np.save(f"{w}/a.npy", a)
b_nan = b.copy(); b_nan[2, 5] = b_nan[5, 2] = np.nan
scipy.io.savemat(f"{w}/b.mat", {"rdm": b_nan})
iu = np.triu_indices(20, 1)
np.save(f"{w}/b_vector.npy", b[iu])
with h5py.File(f"{w}/many.h5", "w") as f:  # rsatoolbox-like: 3 RDMs as vectors
    f["dissimilarities"] = np.stack([a[iu], b[iu], (a + b)[iu]])
np.save(f"{w}/two.npy", np.array([[0.0, 1.0], [1.0, 0.0]]))
PY

# rdm: numbers as scipy, rsatoolbox HDF5 layout, a plot
run 0 "$TV_RSA" rdm "$WORK/x.npy" --method correlation --out "$WORK/rdm.npy" --plot "$WORK/rdm.png"
"$TV_PYTHON" -c "
import numpy as np; from scipy.spatial.distance import pdist, squareform
x = np.load('$WORK/x.npy').reshape(20, -1).astype(np.float64)
got, ref = np.load('$WORK/rdm.npy'), squareform(pdist(x, 'correlation'))
assert got.shape == (20, 20) and np.abs(got - ref).max() <= 1e-8 * np.abs(ref).max(), np.abs(got - ref).max()
" || fail "rdm.npy differs from scipy"
[[ $(head -c 8 "$WORK/rdm.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "rdm.png is not a PNG"
run 0 "$TV_RSA" rdm "$WORK/y.h5" --method euclidean --center --out "$WORK/rdm.h5"
"$TV_PYTHON" "$REF" load_rdm "$WORK/rdm.h5" "$WORK/loaded.npy" >"$WORK/report"
grep -qF '"measure": "euclidean"' "$WORK/report" || fail "rsatoolbox loader: $(cat "$WORK/report")"
"$TV_PYTHON" -c "
import numpy as np; from scipy.spatial.distance import pdist, squareform
import h5py; y = h5py.File('$WORK/y.h5')['features'][()].astype(np.float64)
ref = squareform(pdist(y - y.mean(axis=0), 'euclidean')); got = np.load('$WORK/loaded.npy')[0]
assert np.abs(got - ref).max() <= 1e-8 * ref.max()
" || fail "rdm.h5 differs from scipy"

# compare: npy square vs mat with a NaN; vector form; statistics; many-vs-many table
run 0 "$TV_RSA" compare "$WORK/a.npy" "$WORK/b.mat" --method spearman
grep -qF "B: $WORK/b.mat: 1 RDM(s) of 20 conditions, 1 NaN pair(s) dropped" "$WORK/out" || fail "compare report: $(cat "$WORK/out")"
ref=$("$TV_PYTHON" -c "
import numpy as np, scipy.io; from scipy import stats
a = np.load('$WORK/a.npy'); b = scipy.io.loadmat('$WORK/b.mat')['rdm']; iu = np.triu_indices(20, 1)
va, vb = a[iu], b[iu]; k = ~np.isnan(vb); print(repr(float(stats.spearmanr(va[k], vb[k])[0])))")
close "$(tail -n 1 "$WORK/out")" "$ref"
for method in pearson kendall cosine; do
  run 0 "$TV_RSA" compare "$WORK/a.npy" "$WORK/b_vector.npy" --method $method
  ref=$("$TV_PYTHON" -c "
import numpy as np; from scipy import stats
a = np.load('$WORK/a.npy')[np.triu_indices(20, 1)]; b = np.load('$WORK/b_vector.npy')
print(repr(float({'pearson': lambda: stats.pearsonr(a, b)[0], 'kendall': lambda: stats.kendalltau(a, b)[0],
            'cosine': lambda: a @ b / np.linalg.norm(a) / np.linalg.norm(b)}['$method']())))")
  close "$(tail -n 1 "$WORK/out")" "$ref"
done
# a labelled line (method, pairs used, r; p and CI with few digits) before the bare number
run 0 "$TV_RSA" compare "$WORK/a.npy" "$WORK/b.mat"
grep -qE '^pearson r = -?[0-9]\.[0-9]{4} over 189 pairs$' "$WORK/out" || fail "labelled line: $(cat "$WORK/out")"
[[ $(tail -n 1 "$WORK/out") =~ ^-?[0-9.e-]+$ ]] || fail "last line is not a number: $(cat "$WORK/out")"
run 0 "$TV_RSA" compare "$WORK/a.npy" "$WORK/b_vector.npy" --permutations 99 --bootstrap 50 --seed 3
grep -q "^permutation p = 0.01 (99 permutations, seed 3)$" "$WORK/out" || fail "p-value line: $(cat "$WORK/out")"
grep -qE '^bootstrap 95% CI = \[-?[0-9]\.[0-9]{4}, -?[0-9]\.[0-9]{4}\] \(50 valid samples of 50, seed 3\)$' "$WORK/out" ||
  fail "CI line: $(cat "$WORK/out")"
run 0 "$TV_RSA" compare "$WORK/a.npy" "$WORK/b_vector.npy" --permutations 713 --seed 1 --method spearman
grep -q "^spearman r = .* over 190 pairs$" "$WORK/out" || fail "labelled line: $(cat "$WORK/out")"
grep -qE '^permutation p = 0\.0*[1-9][0-9]? \(713 permutations, seed 1\)$' "$WORK/out" || fail "p digits: $(cat "$WORK/out")"
run 0 "$TV_RSA" compare "$WORK/many.h5" "$WORK/a.npy"
[[ $(wc -l <"$WORK/out") == 7 ]] || fail "table: $(cat "$WORK/out")"  # A, B, label, header, 3 rows
grep -qF "pearson r of A's RDMs (rows) with B's (columns)" "$WORK/out" || fail "table label: $(cat "$WORK/out")"
grep -q "^0	1$" "$WORK/out" || fail "first row (A0 = a): $(cat "$WORK/out")"

# cka: npy vs mat, RBF with the median heuristic, unbiased
run 0 "$TV_RSA" cka "$WORK/x.npy" "$WORK/y.mat" --kernel rbf --sigma median --unbiased
ref=$("$TV_PYTHON" -c "
import sys, numpy as np; sys.path.insert(0, '$TV_SOURCE_DIR/tests/reference'); import rsa_reference as r
x = np.load('$WORK/x.npy').reshape(20, -1); import scipy.io; y = scipy.io.loadmat('$WORK/y.mat')['features']
print(repr(float(r.cka(x, y, 'rbf', True, None))))")
close "$(tail -n 1 "$WORK/out")" "$ref"

# errors: usage → 2 naming the argument, bad input → 1
expect_error 2 "error: --method must be one of correlation, cosine, euclidean, gaussian, sqeuclidean (got 'pearson')" \
  "$TV_RSA" rdm "$WORK/x.npy" --method pearson --out "$WORK/r.npy"
expect_error 2 "error: --method must be one of pearson, spearman, kendall, cosine (got '0')" \
  "$TV_RSA" compare "$WORK/a.npy" "$WORK/a.npy" --method 0
expect_error 2 "error: --kernel must be one of linear, rbf (got 'poly')" "$TV_RSA" cka "$WORK/x.npy" "$WORK/y.h5" --kernel poly
for sub in "rdm|correlation | cosine | euclidean | gaussian | sqeuclidean (default correlation)" \
           "compare|pearson | spearman | kendall | cosine (default pearson)" "cka|linear | rbf (default linear)"; do
  run 0 "$TV_RSA" "${sub%%|*}" --help
  grep -qF -- "${sub#*|}" "$WORK/out" || { cat "$WORK/out"; fail "${sub%%|*} --help lacks '${sub#*|}'"; }
  ! grep -qF -- '->' "$WORK/out" || fail "${sub%%|*} --help shows choice internals"
done
run 0 "$TV_RSA" compare --help
grep -qF "(default 0.95)" "$WORK/out" || fail "compare --help lacks the --level default"
expect_error 2 "correlate_rdms: needs at least 3 conditions, got N = 2" "$TV_RSA" compare "$WORK/two.npy" "$WORK/two.npy"
expect_error 2 "--sigma 'wide': expected a positive number or 'median'" "$TV_RSA" cka "$WORK/x.npy" "$WORK/y.h5" --kernel rbf --sigma wide
expect_error 2 "cka: X and Y must have the same number of rows (conditions), got 20 and 2" "$TV_RSA" cka "$WORK/x.npy" "$WORK/two.npy"
expect_error 2 "--out '$WORK/r.txt': use .npy, .h5 or .hdf5" "$TV_RSA" rdm "$WORK/x.npy" --out "$WORK/r.txt"
# a MAT file without an RDM name is refused, not read as the per-image feature layout
"$TV_PYTHON" -c 'import sys, numpy as np, scipy.io as sio
a = np.arange(25.0).reshape(5, 5); a = a + a.T; np.fill_diagonal(a, 0)
sio.savemat(sys.argv[1], {"myrdm": a, "other": a})' "$WORK/unnamed.mat"
expect_error 1 "no RDM found (tried dissimilarities, rdm, RDM, rdms, features; choose one with --dataset)" \
  "$TV_RSA" compare "$WORK/unnamed.mat" "$WORK/unnamed.mat"
run 0 "$TV_RSA" compare "$WORK/unnamed.mat" "$WORK/unnamed.mat" --dataset myrdm
# --plot options are checked before anything is written; the plot shows the image names and a title
expect_error 2 "use .png, .jpg or .jpeg" "$TV_RSA" rdm "$WORK/x.npy" --out "$WORK/early.npy" --plot "$WORK/x.pdf"
[[ ! -e "$WORK/early.npy" ]] || fail "--plot x.pdf: the RDM was written before the plot was refused"
expect_error 2 "unknown colour map 'nosuch'" "$TV_RSA" rdm "$WORK/x.npy" --out "$WORK/early.npy" --plot "$WORK/p.png" --colormap nosuch
[[ ! -e "$WORK/early.npy" ]] || fail "--colormap nosuch: the RDM was written before the plot was refused"
"$TV_PYTHON" - "$WORK/named.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["features"] = np.random.default_rng(1).standard_normal((12, 5)).astype(np.float32)
    f.create_dataset("file_names", data=[f"image_{i:02d}.jpg" for i in range(12)], dtype=h5py.string_dtype())
PY
run 0 "$TV_RSA" rdm "$WORK/named.h5" --out "$WORK/named.npy" --plot "$WORK/labelled.png"
run 0 "$TV_RSA" rdm "$WORK/named.h5" --out "$WORK/named.npy" --plot "$WORK/unlabelled.png" --no-labels
run 0 "$TV_RSA" rdm "$WORK/named.h5" --out "$WORK/named.npy" --plot "$WORK/titled.png" --no-labels --title "my title"
"$TV_PYTHON" - "$WORK" <<'PY' || fail "plot labels / title"
import sys, numpy as np
from PIL import Image
w = sys.argv[1]
dark = {n: int((np.asarray(Image.open(f"{w}/{n}.png").convert("RGB")).max(axis=2) < 40).sum())
        for n in ("labelled", "unlabelled", "titled")}
assert dark["labelled"] > dark["unlabelled"] > 0, dark  # names drawn; the default title in both
assert dark["titled"] != dark["unlabelled"], dark
PY
# npy features as tv-extract writes them: the names come from the file_names.txt beside them
mkdir -p "$WORK/module"
"$TV_PYTHON" -c "import numpy as np; np.save('$WORK/module/features.npy', np.random.default_rng(1).standard_normal((12, 5)).astype(np.float32))"
for i in $(seq -w 0 11); do echo "image_$i.jpg"; done >"$WORK/module/file_names.txt"
run 0 "$TV_RSA" rdm "$WORK/module/features.npy" --out "$WORK/m.npy" --plot "$WORK/npy_labelled.png"
run 0 "$TV_RSA" rdm "$WORK/module/features.npy" --out "$WORK/m.npy" --plot "$WORK/npy_unlabelled.png" --no-labels
head -n 11 "$WORK/module/file_names.txt" >"$WORK/short.txt" && mv "$WORK/short.txt" "$WORK/module/file_names.txt"
run 0 "$TV_RSA" rdm "$WORK/module/features.npy" --out "$WORK/m.npy" --plot "$WORK/npy_mismatch.png"
"$TV_PYTHON" - "$WORK" <<'PY' || fail "npy plot labels from file_names.txt"
import sys, numpy as np
from PIL import Image
w = sys.argv[1]
dark = {n: int((np.asarray(Image.open(f"{w}/{n}.png").convert("RGB")).max(axis=2) < 40).sum())
        for n in ("npy_labelled", "npy_unlabelled", "npy_mismatch")}
assert dark["npy_labelled"] > dark["npy_unlabelled"], dark  # names drawn from file_names.txt
assert dark["npy_mismatch"] == dark["npy_unlabelled"], dark  # 11 names for 12 rows: none drawn
PY
run 0 "$TV_RSA" rdm --help
grep -qF -- "--no-labels" "$WORK/out" && grep -qF -- "--title" "$WORK/out" || fail "rdm --help lacks --title/--no-labels"

printf 'not a feature file' >"$WORK/bad.npy"
run 1 "$TV_RSA" rdm "$WORK/bad.npy" --out "$WORK/r.npy"
grep -qF "bad.npy" "$WORK/err" || fail "bad input error does not name the file: $(cat "$WORK/err")"
[[ ! -e "$WORK/r.npy" ]] || fail "an output appeared after an error"
echo "tv_rsa_test: all passed"
