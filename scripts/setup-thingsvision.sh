#!/usr/bin/env bash
# Makes THINGSvision itself runnable for scripts/bench.sh's whole-process table, beside a given
# python's torch (default /usr/bin/python3: Debian's torch 1.13). THINGSvision 2.7.3's requirements
# (tensorflow < 2.16, torchvision 0.15.2, numpy < 2) do not install beside it, so it runs from its
# released source: the PyPI wheel unpacked into DIR/src, the pure-Python packages its PyTorch path
# imports installed with --no-deps into DIR/deps, and bench/thingsvision_stubs (a stand-in for the
# tensorflow import) on the path. Under numpy 2 (PyPI's torch) one line of its source is mended:
# helpers.py's `np.AxisError`, which numpy 2 moved to `np.exceptions` (the only numpy 2 break on
# THINGSvision's PyTorch path). Prints the PYTHONPATH to use. Needs PyPI (pip download).
#   scripts/setup-thingsvision.sh DIR [PYTHON]
set -euo pipefail
if (($# < 1)); then sed -n '2,8p' "$0" >&2; exit 2; fi
dir=$1 python=${2:-/usr/bin/python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
version=2.7.3
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [[ ! -f "$dir/src/thingsvision/__init__.py" ]]; then
  rm -rf "$dir/src" "$dir/wheel"
  "$python" -m pip download --quiet --no-deps --dest "$dir/wheel" "thingsvision==$version" >&2
  "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$dir"/wheel/*.whl "$dir/src"
fi
if [[ ! -d "$dir/deps/timm" ]]; then
  rm -rf "$dir/deps"
  "$python" -m pip install --quiet --disable-pip-version-check --target "$dir/deps" --no-deps \
    torchtyping==0.1.5 typeguard==2.13.3 ftfy regex tqdm wcwidth timm==0.9.16 huggingface_hub==0.23.5 \
    safetensors pyyaml filelock fsspec packaging typing_extensions \
    requests urllib3 idna charset_normalizer certifi >&2 2> >(grep -v "Running pip as the 'root' user" >&2)
fi
# numpy 2 removed the alias np.AxisError (it is np.exceptions.AxisError since numpy 1.25).
helpers=$dir/src/thingsvision/core/extraction/helpers.py
if grep -qx 'AxisError = np.AxisError' "$helpers"; then
  sed -i 's/^AxisError = np.AxisError$/AxisError = getattr(np, "AxisError", None) or np.exceptions.AxisError  # numpy 2/' "$helpers"
fi
path=$dir/src:$dir/deps:$repo/bench/thingsvision_stubs
PYTHONPATH=$path "$python" -c 'import thingsvision; print("setup-thingsvision: THINGSvision", thingsvision.__version__, file=__import__("sys").stderr)'
echo "$path"
