#!/usr/bin/env bash
# Writes the committed record of scripts/export_all.sh runs: for each source with a log under
# SWEEP_DIR (SWEEP_DIR/SOURCE/export_all_SOURCE.log, as `export_all.sh SWEEP_DIR/SOURCE --source
# SOURCE` writes it), models/exports/SOURCE.log (the log, so that a later run resumes from it:
# copy it into its OUT_DIR) and models/exports/SOURCE.md (every model of the source a row, in
# --list order, "not run yet" where the log has nothing), then the summary table of models/README.md
# (between its "export tables summary" markers: a row per source with its counts).
#   scripts/write_export_tables.sh SWEEP_DIR [--python PY]   (PY: the venv's python, for the lists)
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:?usage: scripts/write_export_tables.sh SWEEP_DIR [--python PY]}
python=.venv/bin/python
[[ ${2:-} == --python ]] && python=$3
mkdir -p models/exports
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
echo "| source | models | exported | tv-extract ok | failed | not run yet | every model |" >"$summary"
echo "|---|---|---|---|---|---|---|" >>"$summary"
for source in ssl custom timm; do
  log="$sweep/$source/export_all_$source.log"
  [[ -f $log ]] || continue
  list=$(mktemp)
  scripts/export_all.sh "$sweep/$source" --source "$source" --python "$python" --print-list >"$list"
  cp "$log" "models/exports/$source.log"
  {
    echo "# scripts/export_all.sh --source $source: every model"
    echo
    echo "Written by scripts/write_export_tables.sh from models/exports/$source.log (see models/README.md,"
    echo "\"scripts/export_all.sh: what was run\"): random weights, export with --check, then tv-extract on"
    echo "examples/images for the first and last suggested module. Seconds: the export and its check."
    echo
    scripts/export_all.sh "$sweep/$source" --source "$source" --models-from "$list" --python "$python" --table
  } >"models/exports/$source.md"
  rows=$(wc -l <"$list")
  exported=$(grep -c '^ok ' "$log" || true)
  extracted=$(grep -c '^extract-ok ' "$log" || true)
  failed=$(grep -c -E '^(FAIL|extract-FAIL) ' "$log" || true)
  notrun=$(grep -c '| not run yet |' "models/exports/$source.md" || true)
  echo "| \`$source\` | $rows | $exported | $extracted | $failed | $notrun | [exports/$source.md](exports/$source.md) |" >>"$summary"
  rm -f "$list"
done
python3 - "$summary" <<'PY'
import sys
readme = "models/README.md"
begin, end = "<!-- export tables summary -->\n", "<!-- end export tables summary -->"
text = open(readme).read()
table = open(sys.argv[1]).read()
text = text[:text.index(begin) + len(begin)] + table + text[text.index(end):]
open(readme, "w").write(text)
PY
cat "$summary"
