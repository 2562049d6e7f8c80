#!/usr/bin/python3
"""Loads MAT 5 files with GNU Octave and compares what Octave sees with the reference rows.

Usage: storage_octave.py CASES   (same line format as storage_check.py, KIND = mat5)
Octave writes size(features), class(features), the data in its own (column-major) order and the
file_names cell; numpy then checks that Octave saw the N x D (N x C x H x W) array bit for bit.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    cases = [line.split() for line in open(sys.argv[1]) if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        script = []
        for i, (kind, path, raw, dtype, shape, names_file) in enumerate(cases):
            out = os.path.join(tmp, str(i))
            script.append(f"""
s = load('{path}');
f = fopen('{out}.size', 'w'); fprintf(f, '%d ', size(s.features)); fclose(f);
f = fopen('{out}.class', 'w'); fprintf(f, '%s', class(s.features)); fclose(f);
f = fopen('{out}.bin', 'w'); fwrite(f, s.features(:), class(s.features)); fclose(f);
if isfield(s, 'file_names')
  f = fopen('{out}.names', 'w');
  for k = 1:numel(s.file_names) fprintf(f, '%s\\n', s.file_names{{k}}); end
  fclose(f);
end
""")
        subprocess.run(["octave-cli", "--no-gui", "--norc", "--quiet", "--eval", "".join(script)],
                       check=True)
        for i, (kind, path, raw, dtype, shape, names_file) in enumerate(cases):
            out = os.path.join(tmp, str(i))
            shape = tuple(int(s) for s in shape.split(","))
            ref = np.fromfile(raw, dtype="<f4").reshape(shape).astype(dtype)
            size = tuple(int(s) for s in open(out + ".size").read().split())
            if size != shape:
                print(f"FAIL {path}: Octave size {size} != {shape}")
                sys.exit(1)
            cls = open(out + ".class").read()
            want = {"float32": "single", "float64": "double"}[dtype]
            if cls != want:
                print(f"FAIL {path}: Octave class {cls} != {want}")
                sys.exit(1)
            got = np.fromfile(out + ".bin", dtype=ref.dtype).reshape(shape, order="F")
            if not np.array_equal(got.view(f"u{ref.itemsize}"), ref.view(f"u{ref.itemsize}")):
                print(f"FAIL {path}: Octave values differ")
                sys.exit(1)
            if names_file != "-":
                names = open(names_file, encoding="utf-8").read()
                if open(out + ".names", encoding="utf-8").read() != names:
                    print(f"FAIL {path}: Octave file_names differ")
                    sys.exit(1)
            print("ok", path)


if __name__ == "__main__":
    main()
