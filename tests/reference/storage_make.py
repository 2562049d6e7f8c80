#!/usr/bin/python3
"""Writes feature files with numpy, h5py, scipy.io and Octave for the reader tests.

Usage: storage_make.py OUTDIR
Each array also goes to a raw little-endian float32 file (ref_*.f32) that the C++ test compares
what read_features returns with.
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import scipy.io


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 3)).astype(np.float32)
    a[0, 0] = -0.0
    a[1, 2] = 3.0e38
    b = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    a.tofile(os.path.join(out, "ref_2d.f32"))
    b.tofile(os.path.join(out, "ref_4d.f32"))
    names = ["cat/001.jpg", "dog/002.jpg", "emu/ü03.png", "fox/004.jpg", "gnu/005.jpg"]
    with open(os.path.join(out, "names.txt"), "w", encoding="utf-8") as f:
        f.write("".join(n + "\n" for n in names))

    np.save(os.path.join(out, "np_c.npy"), a)
    np.save(os.path.join(out, "np_f.npy"), np.asfortranarray(a))
    np.save(os.path.join(out, "np_f16.npy"), a.astype(np.float16))
    np.save(os.path.join(out, "np_f64.npy"), a.astype(np.float64))
    np.save(os.path.join(out, "np_4d.npy"), b)
    np.save(os.path.join(out, "np_4d_f.npy"), np.asfortranarray(b))
    np.savetxt(os.path.join(out, "np.txt"), a)
    with h5py.File(os.path.join(out, "h5.hdf5"), "w") as f:
        f.create_dataset("features", data=a)
        f.create_dataset("file_names", data=names, dtype=h5py.string_dtype())
        f.create_dataset("features_4d", data=b)
    scipy.io.savemat(os.path.join(out, "sp5.mat"),
                     {"features": a, "file_names": np.array(names, dtype=object).reshape(-1, 1)})
    scipy.io.savemat(os.path.join(out, "sp5_4d.mat"), {"features": b.astype(np.float64)})
    # Octave's own MAT 5 writer (-v6: uncompressed).
    a_path = os.path.join(out, "ref_2d.f32")
    subprocess.run(["octave-cli", "--no-gui", "--norc", "--quiet", "--eval",
                    f"f = fopen('{a_path}'); x = fread(f, [3 5], 'single=>single'); fclose(f);"
                    f" features = x'; save('-v6', '{os.path.join(out, 'octave5.mat')}', 'features');"],
                   check=True)
    with open(os.path.join(out, "garbage.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)


if __name__ == "__main__":
    main()
