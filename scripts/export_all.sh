#!/usr/bin/env bash
# Exports every model of a source with random weights and (with --extract) runs each once through
# tv-extract: the zoo's scheduled check (not CI: the whole torchvision list is ~22 GB of TorchScript,
# timm's 1371 models far more). Each export is checked against the eager model on one random input
# (--check). One line per model goes to OUT_DIR/export_all[_SOURCE].log:
#   "ok NAME SECONDS METHOD", "FAIL NAME: reason", "skip NAME",
#   "extract-ok NAME FIRST LAST", "extract-FAIL NAME: reason"
# The run is resumable: a model that already has an "ok"/"FAIL" line (and, with --extract, an
# "extract-" line) is not run again; --fresh starts the log anew.
#   scripts/export_all.sh OUT_DIR [--source torchvision|timm|ssl|custom] [--limit N]
#       [--skip NAME,...] [--only NAME,...] [--no-check] [--extract TV_EXTRACT IMAGES]
#       [--reuse] [--delete] [--timeout SECONDS] [--python PY] [--fresh] [--table] [--models-from FILE]
#   --source S   THINGSvision's source (export.py --list --source S); without it, export.py --list
#                (torchvision, CORnet, CLIP stand-ins) with /usr/bin/python3 as before
#   --limit N    at most N models not yet in the log, then stop (run again to go on)
#   --reuse      keep existing exports;  --delete  remove each archive after its run (keeps the JSON)
#   --timeout S  per export and per extraction (default 1800)
#   --memory-floor MB  while a model runs, a guard checks /proc/meminfo every second; when
#                MemAvailable falls below MB (default 1024; 0: no guard) it kills the largest process
#                of the run (the export or tv-extract; 32 MB at least), logged FAIL "killed by the
#                memory guard ...".
#                Without it, a model a little too large for the machine can stall it for many
#                minutes before the kernel's out-of-memory killer acts.
#   --python PY  the python that exports (default: /usr/bin/python3 without --source and for ssl,
#                the repository's .venv (scripts/setup-venv.sh) for timm and custom)
#   --table      print the log as the markdown table of models/README.md and exit (with
#                --models-from: a row for every listed model, "not run yet" where the log has none)
#   --print-list print the model lines a run would go through (one per OpenCLIP architecture) and exit
#   --models-from FILE  the model lines (as export.py --list --source S prints them) from FILE, in its
#                order: e.g. smallest first (scripts/sort_models_by_size.py); saves the list's import
# OpenCLIP appears once per variant (random weights; --dataset only changes the preprocessing).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${1:?usage: scripts/export_all.sh OUT_DIR [--source S] [--limit N] ... (see the header)}
shift
source="" skip="" only="" check="--check" tv_extract="" images="" reuse=0 delete=0 limit=0
timeout_s=1800 python="" fresh=0 table=0 models_from="" print_list=0 memory_floor=1024
while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) source=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --skip) skip=",$2,"; shift 2 ;;
    --only) only=",$2,"; shift 2 ;;
    --no-check) check=""; shift ;;
    --extract) tv_extract=$(realpath "$2"); images=$(realpath "$3"); shift 3 ;;
    --reuse) reuse=1; shift ;;
    --delete) delete=1; shift ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --memory-floor) memory_floor=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --table) table=1; shift ;;
    --print-list) print_list=1; shift ;;
    --models-from) models_from=$(realpath "$2"); shift 2 ;;
    *) echo "export_all.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$source" in
  ""|torchvision|timm|ssl|custom) ;;
  *) echo "export_all.sh: --source $source is not one of torchvision, timm, ssl, custom" >&2; exit 2 ;;
esac
if [[ -z $python ]]; then
  if [[ -z $source || $source == torchvision || $source == ssl ]]; then python=/usr/bin/python3
  else python=$repo/.venv/bin/python; fi
fi
mkdir -p "$out"
out=$(realpath "$out")
log="$out/export_all${source:+_$source}.log"

stem() {  # stem MODEL [OPTIONS]: the file name export.py gives the model (without .pt)
  case "$1" in
    OpenCLIP) echo "OpenCLIP_${3:-ViT-B-32-quickgelu_laion400m_e32}" ;;
    clip) echo "clip_ViT-B-32" ;;
    cornet-*) echo "${1//-/_}" ;;
    *) echo "$1" ;;
  esac
}

if ((table)); then  # one row per model: export status, method, seconds, extraction
  # With --models-from, a row for every model of the list, in its order ("not run yet" where the
  # log has nothing); else the log's models in log order.
  inputs=("$log")
  if [[ -n $models_from ]]; then  # the list's lines as the names the log uses (stem)
    names_file=$(mktemp)
    trap 'rm -f "$names_file"' EXIT
    while read -r -a words; do
      [[ ${#words[@]} -eq 0 || ${words[0]} == \#* ]] || stem "${words[@]}"
    done <"$models_from" >"$names_file"
    inputs=("$names_file" "$log")
  fi
  echo "| model | export | method | seconds | tv-extract (first, last suggested module) |"
  echo "|---|---|---|---|---|"
  awk '
    function cell(text) { gsub(/\|/, "\\|", text); return text }
    ARGC == 3 && FILENAME == ARGV[1] { if ($0 !~ /^#/ && NF) listed[++nl] = $1; next }
    $1 == "ok" { name = $2; order[++n] = name; st[name] = "ok"; sec[name] = $3; m[name] = $4 }
    $1 == "FAIL" { name = $2; sub(":$", "", name); order[++n] = name; st[name] = "FAIL: " substr($0, index($0, ":") + 2); m[name] = "" }
    $1 == "skip" { name = $2; order[++n] = name; st[name] = "skipped" }
    $1 == "extract-ok" { ex[$2] = "ok (" $3 ", " $4 ")" }
    $1 == "extract-FAIL" { name = $2; sub(":$", "", name); ex[name] = "FAIL: " substr($0, index($0, ":") + 2) }
    END { if (nl) { n = nl; for (i = 1; i <= nl; i++) order[i] = listed[i] }
          for (i = 1; i <= n; i++) { k = order[i]; if (seen[k]++) continue;
          if (!(k in st)) st[k] = "not run yet";
          printf "| %s | %s | %s | %s | %s |\n", k, cell(st[k]), m[k], sec[k], cell(k in ex ? ex[k] : "") } }' "${inputs[@]}"
  exit 0
fi
((fresh)) && : >"$log"
touch "$log"

# The model list: lines "NAME [export.py options]".
if [[ -n $models_from ]]; then
  mapfile -t models < <(grep -v -e '^#' -e '^$' "$models_from")
elif [[ -z $source ]]; then
  mapfile -t models < <("$python" models/export.py --list)
elif ! list=$("$python" models/export.py --list --source "$source" 2>&1); then
  echo "export_all.sh: $list" >&2; exit 1
else
  mapfile -t models < <(grep -v -- "--dataset" <<<"$list" | grep -v "^OpenCLIP$" | grep -v "^OpenCLIP (")
fi
if ((print_list)); then printf '%s\n' "${models[@]}"; exit 0; fi

done_before() {  # done_before NAME: the log has this model's final lines
  grep -q -E "^(ok|FAIL) $(printf '%s' "$1" | sed 's/[.[\*^$+?(){}|]/\\&/g')(:| )" "$log" || return 1
  [[ -z $tv_extract ]] && return 0
  grep -q "^ok $1 " "$log" || return 0   # a failed export has nothing to extract
  grep -q -E "^extract-(ok|FAIL) $(printf '%s' "$1" | sed 's/[.[\*^$+?(){}|]/\\&/g')(:| )" "$log"
}


# One export.py --serve process exports model after model (torch and timm imported once); a model
# that runs past --timeout, or kills the process, is a FAIL and the next one gets a new process.
exporter_log="$out/export_all${source:+_$source}.exporter.log"  # what export.py printed
start_exporter() {
  coproc EXPORTER { exec "$python" models/export.py --serve 2>>"$exporter_log"; }
}
stop_exporter() {
  [[ -n ${EXPORTER_PID:-} ]] || return 0
  kill -KILL "$EXPORTER_PID" 2>/dev/null  # a model stuck in native code may ignore TERM
  wait "$EXPORTER_PID" 2>/dev/null
  EXPORTER_PID=""
}
trap stop_exporter EXIT
export_one() {  # export_one ARGS...: 0 if export.py exported; else 1 with $msg saying why
  [[ -n ${EXPORTER_PID:-} ]] && kill -0 "$EXPORTER_PID" 2>/dev/null || start_exporter
  printf '%q ' "$@" >&"${EXPORTER[1]}"
  echo >&"${EXPORTER[1]}"
  local reply rc
  if read -r -t "$timeout_s" reply <&"${EXPORTER[0]}"; then
    rc=${reply%%$'\t'*}
    msg=${reply#*$'\t'}
    [[ $rc == 0 ]]
    return
  elif (($? > 128)); then
    msg="timed out after ${timeout_s}s"
  else
    wait "$EXPORTER_PID" 2>/dev/null
    rc=$?
    if ((rc == 137)); then msg="export.py was killed (SIGKILL: $(oom_hint))"
    else msg="export.py died, exit $rc (see $exporter_log)"; fi
  fi
  stop_exporter
  return 1
}
# Where a process got SIGKILL: the kernel's out-of-memory killer, unless someone else sent it.
oom_hint() {
  echo "out of memory on this machine's $(memory_total_gib) GiB, if nobody killed it"
}
memory_total_gib() { awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo; }

# The memory guard (--memory-floor): a background loop that kills the largest resident process
# below this script when MemAvailable < the floor, and writes "PID RSS_KB AVAILABLE_MB" to
# $guard_file for the FAIL line (guard_reason).
guard_file="$out/.export_all${source:+_$source}.memory_guard"
largest_descendant() {  # largest_descendant PID SKIP: "PID RSS_KB" of the largest process below PID,
                        # not counting SKIP and what runs below it (the guard)
  local f key value pid ppid rss best="" best_rss=32767  # from 32 MB: not the script's own tools
  local -A parent=() resident=()
  for f in /proc/[0-9]*/status; do
    pid=${f#/proc/}; pid=${pid%/status}; ppid="" rss=0
    while read -r key value _; do
      case $key in PPid:) ppid=$value ;; VmRSS:) rss=$value ;; esac
    done 2>/dev/null <"$f"
    [[ -n $ppid ]] && parent[$pid]=$ppid resident[$pid]=$rss
  done
  for pid in "${!parent[@]}"; do
    ppid=${parent[$pid]}
    [[ $pid == "$2" ]] && continue
    while [[ -n $ppid && $ppid != "$1" && $ppid != "$2" && $ppid -gt 1 ]]; do ppid=${parent[$ppid]:-}; done
    if [[ $ppid == "$1" ]] && ((resident[$pid] > best_rss)); then
      best=$pid best_rss=${resident[$pid]}
    fi
  done
  [[ -n $best ]] && echo "$best $best_rss"
}
memory_guard() {
  local top=$1 available victim self=$BASHPID
  while sleep 1 && kill -0 "$top" 2>/dev/null; do  # ends with the script, however it ends
    available=$(awk '/^MemAvailable/ {printf "%d", $2 / 1024}' /proc/meminfo)
    ((available < memory_floor)) || continue
    victim=$(largest_descendant "$top" "$self") || continue
    echo "$victim $available" >"$guard_file"
    kill -KILL "${victim%% *}" 2>/dev/null
  done
}
guard_reason() {  # guard_reason: 0 and $msg set when the guard killed a process since the last call
  [[ -f $guard_file ]] || return 1
  local pid rss available
  read -r pid rss available <"$guard_file"
  rm -f "$guard_file"
  msg="killed by the memory guard (SIGKILL at $(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1048576}') GB resident:"
  msg+=" MemAvailable ${available} MiB < --memory-floor ${memory_floor} MiB, of this machine's $(memory_total_gib) GiB)"
}
rm -f "$guard_file"
if ((memory_floor > 0)); then
  memory_guard $$ &
  guard_pid=$!
  trap 'stop_exporter; kill "$guard_pid" 2>/dev/null' EXIT
fi

failed=0 ran=0
for line in "${models[@]}"; do
  read -ra words <<<"$line"
  model=${words[0]}
  extra=("${words[@]:1}")
  # the output stem: the model name, OpenCLIP_VARIANT for OpenCLIP (as export.py names it)
  name=$model
  name=$(stem "$model" "${extra[@]}")
  if [[ -n "$only" && "$only" != *",$name,"* && "$only" != *",$model,"* ]]; then continue; fi
  if [[ "$skip" == *",$name,"* ]]; then
    grep -q "^skip $name$" "$log" || echo "skip $name" | tee -a "$log"
    continue
  fi
  done_before "$name" && continue
  if ((limit > 0 && ran >= limit)); then break; fi
  ran=$((ran + 1))
  if [[ -z $source ]]; then args=(--arch "$model"); else args=(--source "$source" --model "$model" "${extra[@]}"); fi
  start=$(date +%s)
  rm -f "$guard_file"
  if ! grep -q "^ok $name " "$log"; then
    if [[ $reuse -eq 1 && -f "$out/$name.json" ]] && \
       pt=$(sed -n 's/.*"file": "\([^"]*\)".*/\1/p' "$out/$name.json") && [[ -f "$out/$pt" ]]; then
      echo "ok $name reused $(sed -n 's/.*"export_method": "\([a-z]*\)".*/\1/p' "$out/$name.json")" | tee -a "$log"
    elif export_one "${args[@]}" --weights random --out "$out" $check; then
      method=$(sed -n 's/.*"export_method": "\([a-z]*\)".*/\1/p' "$out/$name.json")
      echo "ok $name $(( $(date +%s) - start ))s $method" | tee -a "$log"
    else
      guard_reason
      echo "FAIL $name: $msg" | tee -a "$log"
      failed=$((failed + 1))
      continue
    fi
  fi
  if [[ -n "$tv_extract" ]]; then
    mapfile -t mods < <("$python" -c 'import json,sys; m=json.load(open(sys.argv[1]))["suggested_modules"]; print(m[0]); print(m[-1])' "$out/$name.json")
    pt=$(sed -n 's/.*"file": "\([^"]*\)".*/\1/p' "$out/$name.json")
    rm -rf "$out/features/$name"
    if msg=$(timeout "$timeout_s" "$tv_extract" --model "$out/$pt" --images "$images" --out "$out/features/$name" \
               --module "${mods[0]}" --module "${mods[1]}" --all-calls --batch-size 2 --quiet 2>&1); then
      echo "extract-ok $name ${mods[0]} ${mods[1]}" | tee -a "$log"
    else
      rc=$?
      case $rc in
        124) msg="timed out after ${timeout_s}s" ;;
        137) guard_reason || msg="tv-extract was killed (SIGKILL: $(oom_hint))" ;;
        *) msg=$(echo "$msg" | tail -n 1) ;;
      esac
      echo "extract-FAIL $name: $msg" | tee -a "$log"
      failed=$((failed + 1))
    fi
    rm -rf "$out/features/$name"
  fi
  if ((delete)); then
    pt=$(sed -n 's/.*"file": "\([^"]*\)".*/\1/p' "$out/$name.json" 2>/dev/null)
    [[ -n $pt ]] && rm -f "$out/$pt"
  fi
done
remaining=0
for line in "${models[@]}"; do
  read -ra words <<<"$line"
  name=$(stem "${words[@]}")
  done_before "$name" || grep -q "^skip $name$" "$log" || remaining=$((remaining + 1))
done
echo "$(grep -c '^ok' "$log") exported, $(grep -c '^extract-ok' "$log") extracted," \
     "$(grep -c -E '^(FAIL|extract-FAIL)' "$log") failed, $(grep -c '^skip' "$log") skipped," \
     "$remaining of ${#models[@]} not run yet (log: $log)" | tee "$out/export_all${source:+_$source}.summary"
[[ $failed -eq 0 ]]
