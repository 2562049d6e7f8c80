#!/bin/bash
# extract_models.sh — batch jobs in shell: every (model, module) pair into its own output directory.
#
#   examples/extract_models.sh IMAGES OUT MODEL.pt[:module,module...] ...
#
# e.g. examples/extract_models.sh images/ features/ models/resnet50.pt:layer4,avgpool models/alexnet.pt:'features.*'
# A model without ":modules" uses its sidecar's suggested_modules (else it is skipped with a message).
# One tv-extract call per model extracts all its modules in one pass over the images; the outputs go
# to OUT/<model name>/. Re-running the script continues unfinished runs (--resume) and skips finished
# ones. Set TV_EXTRACT to the binary if it is not on PATH; extra options go in TV_EXTRACT_ARGS.
set -euo pipefail
TV_EXTRACT=${TV_EXTRACT:-tv-extract}
images=${1:?usage: extract_models.sh IMAGES OUT MODEL.pt[:modules] ...}
out=${2:?output directory}
shift 2
status=0
for spec in "$@"; do
  model=${spec%%:*}
  name=$(basename "$model" .pt)
  modules=()
  if [[ $spec == *:* ]]; then
    IFS=, read -ra list <<<"${spec#*:}"
  else
    sidecar=${model%.pt}.json
    list=()
    if [[ -f $sidecar ]]; then
      mapfile -t list < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1])).get("suggested_modules") or []))' "$sidecar")
    fi
  fi
  for m in "${list[@]}"; do [[ -n $m ]] && modules+=(--module "$m"); done
  if [[ ${#modules[@]} == 0 ]]; then
    echo "extract_models.sh: no modules for $model (write MODEL.pt:module,...)" >&2
    status=2
    continue
  fi
  echo "== $name: ${modules[*]}" >&2
  # shellcheck disable=SC2086
  "$TV_EXTRACT" --model "$model" "${modules[@]}" --images "$images" --out "$out/$name" --resume \
    ${TV_EXTRACT_ARGS:-} || status=1
done
exit $status
