#!/usr/bin/env bash
# Runs a command on a copy of this repository inside a fresh Debian root, as on a new machine:
# nothing installed but a minimal base system (debootstrap --variant=minbase), so a package that
# scripts/install-deps.sh forgets, or a file outside the repository, fails there.
#   scripts/in-debian-root.sh SUITE ROOT COMMAND...
#     SUITE    bookworm (Debian 12) or trixie (Debian 13)
#     ROOT     folder for the root; made with debootstrap when it does not exist (needs root and
#              the debootstrap package: installed here when missing)
#     COMMAND  run with bash in the repository copy ROOT/src, e.g. scripts/run-tests.sh
# The repository's tracked and untracked-but-not-ignored files are copied (no build folders).
# /proc, /sys and /dev are mounted for the run (Slurm needs /sys/fs/cgroup, pty tests /dev/pts)
# and unmounted afterwards, also on failure. The root is left in place: remove it with rm -rf.
set -euo pipefail
if (($# < 3)); then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
suite=$1 root=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ $(id -u) -ne 0 ]]; then
  echo "in-debian-root: needs root (debootstrap, mount, chroot)" >&2
  exit 2
fi
if [[ ! -x "$root/bin/bash" ]]; then
  if ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends debootstrap >/dev/null; }
  fi
  echo "in-debian-root: debootstrap $suite into $root"
  start=$(date +%s)
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
    tail -20 "$root.debootstrap.log" >&2
    exit 1
  }
  echo "in-debian-root: base system in $(($(date +%s) - start)) s"
fi

mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[i]}
    umount -R -l "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT
for d in proc sys dev; do
  mkdir -p "$root/$d"
  if mountpoint -q "$root/$d"; then continue; fi
  if [[ $d == proc ]]; then mount -t proc proc "$root/proc"; else mount --rbind "/$d" "$root/$d"; fi
  mounted+=("$root/$d")
done
cp /etc/hosts "$root/etc/hosts"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# Copied over an earlier copy (its build folders are kept for incremental builds).
mkdir -p "$root/src"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    (cd "$repo" && tar --null --no-recursion -T - -cf -) | tar -xf - -C "$root/src"
else
  (cd "$repo" && tar --exclude='./build*' --exclude=./.venv -cf - .) | tar -xf - -C "$root/src"
fi

command=$(printf '%q ' "$@")
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI="${CI:-}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c "cd /src && $command"
