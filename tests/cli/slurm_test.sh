#!/bin/bash
# A real single-node Slurm on localhost: munged, slurmctld and slurmd started by hand (PID 1 is not
# systemd), examples/slurm/extract.sbatch as a 5-task array + a dependent merge job, compared with
# a one-process run byte for byte. Needs Debian's slurmctld slurmd slurm-client munge (installs
# nothing); exits 77 (skipped) without them or when not root. The daemons are stopped by a trap.
source "$(dirname "$0")/common.sh"
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
[[ $(id -u) == 0 ]] || { echo "SKIP: slurmd must run as root here"; exit 77; }

S="$WORK/slurm"
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge"
chmod 700 "$S/munge"
PIDS=()
stop_daemons() {
  local pid
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cleanup_work
}
trap stop_daemons EXIT

dump_logs() { for f in "$S"/log/*; do echo "=== $f"; tail -30 "$f"; done >&2; }

dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$S/munge/munge.key"
munged --foreground --force --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket" \
  --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/seed" &
PIDS+=($!)
for i in $(seq 50); do [[ -S "$S/munge/munge.socket" ]] && break; sleep 0.1; done
[[ -S "$S/munge/munge.socket" ]] || { echo "SKIP: munged does not start here"; cat "$S/log/munged.log" 2>/dev/null; exit 77; }

host=$(hostname -s)
base_port=$((20000 + RANDOM % 20000))
cat >"$S/slurm.conf" <<CONF
ClusterName=tvtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$base_port
SlurmdPort=$((base_port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$S/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$S/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$S/log/slurmd.out" 2>&1 &
PIDS+=($!)
for i in $(seq 120); do
  state=$(sinfo -h -o %t 2>/dev/null | head -1 || true)
  [[ $state == idle* ]] && break
  [[ $i == 120 ]] && { dump_logs; fail "the Slurm node did not become idle (state '$state')"; }
  sleep 0.5
done

# The one-process run to compare with; 7 images in 5 tasks with the default batch size (32): every
# task finishes (shards are balanced by images), so the afterok merge runs
MODULES=(layer4.1.relu avgpool)
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.1.relu --module avgpool \
  --images "$EXAMPLES" --out "$WORK/single" --quiet

OUT="$WORK/cluster"
mkdir -p "$OUT"
export TV_EXTRACT TV_MERGE TV_EXTRACT_ARGS=
cd "$WORK"
jid=$(sbatch --parsable --array=0-4 "$TV_SOURCE_DIR/examples/slurm/extract.sbatch" "$OUT" "$TV_MODEL" \
      "$EXAMPLES" "${MODULES[@]}") || { dump_logs; fail "sbatch (array)"; }
mid=$(sbatch --parsable --dependency=afterok:"$jid" "$TV_SOURCE_DIR/examples/slurm/extract.sbatch" --merge "$OUT") \
  || { dump_logs; fail "sbatch (merge)"; }
for i in $(seq 600); do
  [[ -z $(squeue -h -j "$jid,$mid" 2>/dev/null) ]] && break
  [[ $i == 600 ]] && { squeue; dump_logs; fail "jobs still queued after 300 s"; }
  sleep 0.5
done
merge_state=$(scontrol show job "$mid" | grep -o 'JobState=[A-Z_]*' | head -1)
[[ $merge_state == JobState=COMPLETED ]] || { cat "$WORK"/tv-extract-*.log >&2; dump_logs; fail "merge job: $merge_state"; }
for i in 0 1 2 3 4; do
  [[ -f "$OUT/shard_$i/manifest.json" ]] || fail "shard $i missing"
  grep -q "\"shard_index\": $i" "$OUT/shard_$i/manifest.json" || fail "shard $i has the wrong index"
  grep -q '"shard_count": 5' "$OUT/shard_$i/manifest.json" || fail "shard $i: count is not 5"
done
same_files "$WORK/single" "$OUT/merged"
echo "slurm: ok"
