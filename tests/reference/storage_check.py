#!/usr/bin/python3
"""Checks feature files written by thingsvision-cpp with the tools users read them with.

Usage: storage_check.py CASES
Each line of CASES: KIND FILE RAW DTYPE SHAPE NAMES
  KIND  npy | hdf5 | mat5 | mat73 | txt | mat5_per_image
  RAW   the rows as raw little-endian float32 (C order), the independent reference
  DTYPE float32 | float16 | float64 (the reference is converted with numpy's astype)
  SHAPE comma-separated full shape (N,...)
  NAMES a file with one file name per line, or '-'
Prints 'ok FILE' per case; exits 1 with a message at the first mismatch.
"""
import sys

import numpy as np


def fail(path, msg):
    print(f"FAIL {path}: {msg}")
    sys.exit(1)


def same_bits(path, ref, got, what="features"):
    if got.shape != ref.shape:
        fail(path, f"{what} shape {got.shape} != reference {ref.shape}")
    if got.dtype != ref.dtype:
        fail(path, f"{what} dtype {got.dtype} != reference {ref.dtype}")
    a = np.ascontiguousarray(ref).view(np.uint8)
    b = np.ascontiguousarray(got).view(np.uint8)
    if not np.array_equal(a, b):
        bad = np.argwhere(np.ascontiguousarray(ref).ravel().view(f"u{ref.itemsize}") !=
                          np.ascontiguousarray(got).ravel().view(f"u{ref.itemsize}"))
        i = int(bad[0][0])
        fail(path, f"{what} differ at flat index {i}: {ref.ravel()[i]!r} != {got.ravel()[i]!r}")


def main():
    for line in open(sys.argv[1]):
        if not line.strip():
            continue
        kind, path, raw, dtype, shape, names_file = line.split()
        shape = tuple(int(s) for s in shape.split(","))
        ref = np.fromfile(raw, dtype="<f4").reshape(shape).astype(dtype)
        names = None
        if names_file != "-":
            names = open(names_file, encoding="utf-8").read().split("\n")[:-1]
        if kind == "npy":
            got = np.load(path)
            same_bits(path, ref, got)
            got = np.load(path, mmap_mode="r")
            same_bits(path, ref, np.array(got))
            buf = __import__("io").BytesIO()
            np.save(buf, ref)
            if buf.getvalue() != open(path, "rb").read():
                fail(path, "not byte-identical to numpy.save of the reference")
        elif kind == "hdf5":
            import h5py
            with h5py.File(path, "r") as f:
                ds = f["features"]
                if ds.chunks is None or ds.maxshape[0] is not None:
                    fail(path, f"features not chunked/extendible: chunks={ds.chunks} maxshape={ds.maxshape}")
                same_bits(path, ref, ds[()])
                if names is not None:
                    got_names = [s.decode("utf-8") for s in f["file_names"][()]]
                    if got_names != names:
                        fail(path, f"file_names {got_names[:3]} != {names[:3]}")
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
                print("attrs", path, sorted(attrs.items()))
        elif kind in ("mat5", "mat5_per_image"):
            import scipy.io
            m = scipy.io.loadmat(path)
            if kind == "mat5_per_image":
                for i, name in enumerate(names):
                    key = name.rsplit(".", 1)[0].replace("/", "_").replace("-", "_")
                    got = m[key]
                    want = ref[i].reshape((1,) + ref.shape[1:]) if ref.ndim == 2 else ref[i]
                    same_bits(path, want, got, key)
            else:
                same_bits(path, ref, m["features"])
                if names is not None:
                    cell = m["file_names"]
                    if cell.shape != (len(names), 1):
                        fail(path, f"file_names cell shape {cell.shape}")
                    got_names = [str(c[0][0]) if c[0].size else "" for c in cell]
                    if got_names != names:
                        fail(path, f"file_names {got_names[:3]} != {names[:3]}")
        elif kind == "mat73":
            import h5py
            with open(path, "rb") as fh:
                head = fh.read(128)
            if head[124:128] != b"\x00\x02IM":
                fail(path, f"MAT 7.3 header marker {head[124:128]!r}")
            with h5py.File(path, "r") as f:
                ds = f["features"]
                # h5py sees MATLAB's N x D ... transposed: D ... x N.
                if ds.shape != tuple(reversed(shape)):
                    fail(path, f"h5py shape {ds.shape} is not the transpose of {shape}")
                cls = ds.attrs["MATLAB_class"].decode()
                want_cls = {"float32": "single", "float64": "double"}[dtype]
                if cls != want_cls:
                    fail(path, f"MATLAB_class {cls} != {want_cls}")
                same_bits(path, ref, ds[()].transpose())
                if names is not None:
                    refs = f["file_names"][()]
                    if refs.shape != (1, len(names)):
                        fail(path, f"file_names references shape {refs.shape}")
                    got_names = []
                    for r in refs[0]:
                        d = f[r]
                        if "MATLAB_empty" in d.attrs:
                            got_names.append("")
                        else:
                            got_names.append(d[()].ravel().astype(np.uint16).tobytes().decode("utf-16-le"))
                    if got_names != names:
                        fail(path, f"file_names {got_names[:3]} != {names[:3]}")
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
                print("attrs", path, sorted(attrs.items()))
        elif kind == "txt":
            text = open(path).read()
            if ref.ndim == 2:
                got = np.loadtxt(path, ndmin=2)
                same_bits(path, ref.astype(np.float64), got)
                buf = __import__("io").StringIO()
                np.savetxt(buf, ref)
                if buf.getvalue() != text:
                    fail(path, "not identical to numpy.savetxt of the reference")
            else:
                first = text.split("\n", 1)[0]
                if first != f"# Array shape: {ref.shape}":
                    fail(path, f"first line {first!r}")
                # The THINGSvision paper's reader: loadtxt, then reshape to the header's shape.
                got = np.loadtxt(path).reshape(ref.shape)
                same_bits(path, ref.astype(np.float64), got)
                slices = int(np.prod(ref.shape[:-2]))
                if text.count("# New slice\n") != slices:
                    fail(path, f"{text.count('# New slice')} '# New slice' lines, expected {slices}")
        else:
            fail(path, f"unknown kind {kind}")
        print("ok", path)


if __name__ == "__main__":
    main()
