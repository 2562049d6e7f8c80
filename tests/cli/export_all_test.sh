#!/usr/bin/env bash
# export_all_test.sh — scripts/export_all.sh on a short list (--models-from), with this platform's
# python: exported models and their tv-extract runs logged "ok"/"extract-ok"; an unknown name and a
# model past --timeout logged FAIL with the reason, the model after each still exported (a fresh
# export.py --serve process after the timeout); a rerun resumes (nothing run twice); --table rows;
# an export or extraction killed by SIGKILL (out of memory) or by the memory guard logged as such.
source "$(dirname "$0")/common.sh"
script="$TV_SOURCE_DIR/scripts/export_all.sh"
mkdir -p "$WORK/images"
cp "$EXAMPLES/apple.jpg" "$EXAMPLES/baboon.jpg" "$WORK/images/"
# regnet_y_128gf (644 M parameters) takes minutes to build, script and save: it passes --timeout 20
printf '%s\n' squeezenet1_1 no_such_arch regnet_y_128gf mobilenet_v3_small >"$WORK/list.txt"
run() {
  bash "$script" "$WORK/out" --models-from "$WORK/list.txt" --python "$TV_PYTHON" --timeout 20 --delete \
    --extract "$TV_EXTRACT" "$WORK/images"
}
expect_status 1 run  # 1: some models failed
log="$WORK/out/export_all.log"
for model in squeezenet1_1 mobilenet_v3_small; do
  grep -qE "^ok $model [0-9]+s script$" "$log" || { cat "$log" >&2; fail "no ok line for $model"; }
  grep -qE "^extract-ok $model [^ ]+ [^ ]+$" "$log" || { cat "$log" >&2; fail "no extract-ok line for $model"; }
  [[ -f "$WORK/out/$model.json" && ! -e "$WORK/out/$model.pt" ]] || fail "$model: sidecar kept, archive deleted"
done
grep -qE "^FAIL no_such_arch: .*no_such_arch" "$log" || { cat "$log" >&2; fail "unknown name not logged with its reason"; }
grep -qE "^FAIL regnet_y_128gf: timed out after 20s$" "$log" || { cat "$log" >&2; fail "timeout not logged"; }
[[ $(wc -l <"$log") == 6 ]] || { cat "$log" >&2; fail "the log should have 6 lines"; }
grep -q "^2 exported, 2 extracted, 2 failed, 0 skipped, 0 of 4 not run yet" "$WORK/out/export_all.summary" ||
  fail "summary: $(cat "$WORK/out/export_all.summary")"

cp "$log" "$WORK/log.first"
expect_status 0 run  # resumed: every model has its final lines, nothing runs
cmp "$log" "$WORK/log.first" || fail "a rerun ran models again"

bash "$script" "$WORK/out" --models-from "$WORK/list.txt" --python "$TV_PYTHON" --table >"$WORK/table.md"
grep -qF "| squeezenet1_1 | ok | script |" "$WORK/table.md" || { cat "$WORK/table.md" >&2; fail "table row of squeezenet1_1"; }
grep -qF "| regnet_y_128gf | FAIL: timed out after 20s |" "$WORK/table.md" || { cat "$WORK/table.md" >&2; fail "table row of regnet_y_128gf"; }
printf '%s\n' mobilenet_v3_small never_run_x >"$WORK/list2.txt"  # --table with a list: every model a row
bash "$script" "$WORK/out" --models-from "$WORK/list2.txt" --table >"$WORK/table2.md"
[[ $(grep -c '^| [a-z]' "$WORK/table2.md") == 3 ]] || { cat "$WORK/table2.md" >&2; fail "table of the list: 2 rows"; }
grep -qF "| never_run_x | not run yet |" "$WORK/table2.md" || { cat "$WORK/table2.md" >&2; fail "row of a model not run"; }

# A process the kernel kills (SIGKILL, as its out-of-memory killer does): stand-ins for python and
# tv-extract that kill themselves for one model each. The FAIL lines say so; the next model still runs.
cat >"$WORK/killed-python" <<EOF
#!/usr/bin/env bash
# export.py --serve behind a filter that gets SIGKILL when asked for resnet18; other runs as they are
[[ " \$* " == *" --serve "* ]] || exec "$TV_PYTHON" "\$@"
coproc REAL { exec "$TV_PYTHON" "\$@"; }
while IFS= read -r line; do
  [[ \$line == *resnet18* ]] && kill -KILL \$\$
  echo "\$line" >&"\${REAL[1]}"
  IFS= read -r reply <&"\${REAL[0]}" && echo "\$reply"
done
EOF
cat >"$WORK/killed-extract" <<EOF
#!/usr/bin/env bash
[[ "\$*" == *squeezenet1_0* ]] && kill -KILL \$\$
exec "$TV_EXTRACT" "\$@"
EOF
chmod +x "$WORK/killed-python" "$WORK/killed-extract"
printf '%s\n' resnet18 squeezenet1_0 >"$WORK/list3.txt"
expect_status 1 bash "$script" "$WORK/out3" --models-from "$WORK/list3.txt" --python "$WORK/killed-python" --delete \
  --extract "$WORK/killed-extract" "$WORK/images"
log3="$WORK/out3/export_all.log"
grep -qE "^FAIL resnet18: export.py was killed \(SIGKILL: out of memory on this machine's [0-9]+ GiB, if nobody killed it\)$" "$log3" ||
  { cat "$log3" >&2; fail "an export killed by SIGKILL is not logged as such"; }
grep -qE "^ok squeezenet1_0 [0-9]+s script$" "$log3" || { cat "$log3" >&2; fail "no export after the killed one"; }
grep -qE "^extract-FAIL squeezenet1_0: tv-extract was killed \(SIGKILL: out of memory" "$log3" ||
  { cat "$log3" >&2; fail "a tv-extract killed by SIGKILL is not logged as such"; }

# The memory guard: with a floor above any machine's memory it kills the run's largest process at
# once: export.py --serve, then (the export done without the guard) a tv-extract stand-in that holds
# 64 MB for 30 s. Both are FAIL lines naming the guard; nothing else of the run is killed.
echo squeezenet1_1 >"$WORK/list4.txt"
expect_status 1 bash "$script" "$WORK/out4" --models-from "$WORK/list4.txt" --python "$TV_PYTHON" \
  --memory-floor 999999999
log4="$WORK/out4/export_all.log"
grep -qE "^FAIL squeezenet1_1: killed by the memory guard \(SIGKILL at [0-9.]+ GB resident: MemAvailable [0-9]+ MiB < --memory-floor 999999999 MiB, of this machine's [0-9]+ GiB\)$" "$log4" ||
  { cat "$log4" >&2; fail "an export killed by the memory guard is not logged as such"; }
cat >"$WORK/big-extract" <<EOF
#!/usr/bin/env bash
exec "$TV_PYTHON" -c "import time; held = b'x' * (64 << 20); time.sleep(30)"
EOF
chmod +x "$WORK/big-extract"
rm "$log4"
expect_status 0 bash "$script" "$WORK/out4" --models-from "$WORK/list4.txt" --python "$TV_PYTHON" --memory-floor 0
expect_status 1 bash "$script" "$WORK/out4" --models-from "$WORK/list4.txt" --python "$TV_PYTHON" \
  --memory-floor 999999999 --extract "$WORK/big-extract" "$WORK/images"
grep -qE "^extract-FAIL squeezenet1_1: killed by the memory guard \(SIGKILL at 0\.[0-9] GB resident: MemAvailable" "$log4" ||
  { cat "$log4" >&2; fail "a tv-extract killed by the memory guard is not logged as such"; }
[[ ! -e "$WORK/out4/.export_all.memory_guard" ]] || fail "the guard's file is left behind"
echo "export_all: 2 exported and extracted, unknown name, timeout, SIGKILL and memory guard logged, rerun resumed"
