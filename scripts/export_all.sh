#!/usr/bin/env bash
# Exports every architecture of `models/export.py --list` with random weights, for manual runs (not
# CI: the whole zoo is about 5.6 G parameters, ~22 GB of TorchScript). Each export is checked
# against the eager model on one random input (--check). A summary line per architecture goes to
# OUT_DIR/export_all.log ("ok NAME SECONDS METHOD", "FAIL NAME: reason", "skip NAME").
#   scripts/export_all.sh OUT_DIR [--skip NAME,NAME,...] [--only NAME,NAME,...] [--no-check]
set -uo pipefail
cd "$(dirname "$0")/.."
python=/usr/bin/python3
out=${1:?usage: scripts/export_all.sh OUT_DIR [--skip A,B] [--only A,B] [--no-check]}
shift
skip="" only="" check="--check"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --skip) skip=",$2,"; shift 2 ;;
    --only) only=",$2,"; shift 2 ;;
    --no-check) check=""; shift ;;
    *) echo "export_all.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
log="$out/export_all.log"
: >"$log"
failed=0
for arch in $("$python" models/export.py --list); do
  if [[ -n "$only" && "$only" != *",$arch,"* ]] || [[ "$skip" == *",$arch,"* ]]; then
    echo "skip $arch" | tee -a "$log"
    continue
  fi
  start=$(date +%s)
  if msg=$("$python" models/export.py --arch "$arch" --weights random --out "$out" $check 2>&1); then
    method=$(sed -n 's/.*"export_method": "\([a-z]*\)".*/\1/p' "$out/$arch.json")
    echo "ok $arch $(( $(date +%s) - start ))s $method" | tee -a "$log"
  else
    echo "FAIL $arch: $(echo "$msg" | tail -n 1)" | tee -a "$log"
    failed=$((failed + 1))
  fi
done
echo "$(grep -c '^ok' "$log") exported, $failed failed, $(grep -c '^skip' "$log") skipped" | tee -a "$log"
[[ $failed -eq 0 ]]
