#!/usr/bin/env bash
# Exports every architecture of `models/export.py --list` with random weights, for manual runs (not
# CI: the whole zoo is about 5.6 G parameters, ~22 GB of TorchScript). Each export is checked
# against the eager model on one random input (--check). A summary line per architecture goes to
# OUT_DIR/export_all.log ("ok NAME SECONDS METHOD", "FAIL NAME: reason", "skip NAME").
# With --extract TV_EXTRACT IMAGES, each exported model is also run by tv-extract on IMAGES for the
# first and the last of its sidecar's suggested_modules (--all-calls), logged "extract-ok/FAIL".
#   scripts/export_all.sh OUT_DIR [--skip NAME,...] [--only NAME,...] [--no-check]
#                         [--extract TV_EXTRACT IMAGES] [--reuse]   (--reuse: keep existing exports)
set -uo pipefail
cd "$(dirname "$0")/.."
python=/usr/bin/python3
out=${1:?usage: scripts/export_all.sh OUT_DIR [--skip A,B] [--only A,B] [--no-check]}
shift
skip="" only="" check="--check" tv_extract="" images="" reuse=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --skip) skip=",$2,"; shift 2 ;;
    --only) only=",$2,"; shift 2 ;;
    --no-check) check=""; shift ;;
    --extract) tv_extract=$2; images=$3; shift 3 ;;
    --reuse) reuse=1; shift ;;
    *) echo "export_all.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
log="$out/export_all.log"
: >"$log"
failed=0
for arch in $("$python" models/export.py --list); do
  if [[ -n "$only" && "$only" != *",$arch,"* ]]; then
    continue
  fi
  if [[ "$skip" == *",$arch,"* ]]; then
    echo "skip $arch" | tee -a "$log"
    continue
  fi
  start=$(date +%s)
  if [[ $reuse -eq 1 && -f "$out/$arch.pt" && -f "$out/$arch.json" ]]; then
    echo "ok $arch reused" | tee -a "$log"
  elif msg=$("$python" models/export.py --arch "$arch" --weights random --out "$out" $check 2>&1); then
    method=$(sed -n 's/.*"export_method": "\([a-z]*\)".*/\1/p' "$out/$arch.json")
    echo "ok $arch $(( $(date +%s) - start ))s $method" | tee -a "$log"
  else
    echo "FAIL $arch: $(echo "$msg" | tail -n 1)" | tee -a "$log"
    failed=$((failed + 1))
    continue
  fi
  if [[ -n "$tv_extract" ]]; then
    mapfile -t mods < <("$python" -c 'import json,sys; m=json.load(open(sys.argv[1]))["suggested_modules"]; print(m[0]); print(m[-1])' "$out/$arch.json")
    rm -rf "$out/features/$arch"
    if msg=$("$tv_extract" --model "$out/$arch.pt" --images "$images" --out "$out/features/$arch" \
               --module "${mods[0]}" --module "${mods[1]}" --all-calls --batch-size 2 2>&1); then
      echo "extract-ok $arch ${mods[0]} ${mods[1]}" | tee -a "$log"
    else
      echo "extract-FAIL $arch: $(echo "$msg" | tail -n 1)" | tee -a "$log"
      failed=$((failed + 1))
    fi
  fi
done
echo "$(grep -c '^ok' "$log") exported, $(grep -c '^extract-ok' "$log") extracted, $failed failed," \
     "$(grep -c '^skip' "$log") skipped" | tee -a "$log"
[[ $failed -eq 0 ]]
