#!/usr/bin/env bash
# Makes (or updates) a Python venv with PyPI's torch and torchvision (a CUDA build of several GB that
# also runs on the CPU) and the packages the test references import. Its LibTorch is platform (c) of
# the README's "Platforms" (scripts/check-libtorch.sh builds against it); models that need torch 2.x
# are exported with its python, and so are the timm, open_clip and THINGSvision-named models of
# `models/export.py --source` (timm and open-clip-torch are installed here too).
#   scripts/setup-venv.sh [DIR]        DIR defaults to .venv in the repository
#   TORCH_SPEC="torch==2.15.0 torchvision==0.29.2" scripts/setup-venv.sh   pins versions
# Needs python3 >= 3.10 with the venv module (Debian: python3-venv) and access to PyPI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$repo/.venv}
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
read -ra torch_spec <<<"${TORCH_SPEC:-torch torchvision}"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
"$venv/bin/pip" install -q "${torch_spec[@]}" numpy scipy h5py pillow onnx protobuf timm open-clip-torch
"$venv/bin/python" -c "import torch, torchvision, timm, open_clip; print('setup-venv: torch', torch.__version__, \
'(CUDA', str(torch.version.cuda) + ')', 'torchvision', torchvision.__version__, 'timm', timm.__version__, \
'open_clip', open_clip.__version__, 'in $venv')"
