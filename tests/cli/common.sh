# common.sh — sourced by tests/cli/*_test.sh: environment checks, a scratch folder, assertions.
# Environment (set by tests/cli/cli.cmake): TV_EXTRACT TV_MERGE TV_PYTHON TV_SOURCE_DIR TV_MODEL TV_REFERENCE
# TV_OPENCV_DOC_DATA.
set -euo pipefail
for v in TV_EXTRACT TV_MERGE TV_PYTHON TV_SOURCE_DIR TV_MODEL TV_REFERENCE; do
  [[ -n "${!v:-}" ]] || { echo "FAIL: $v is not set" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tv_cli.XXXXXX")
cleanup_work() { rm -rf "$WORK"; }
trap cleanup_work EXIT
EXAMPLES="$TV_SOURCE_DIR/examples/images"

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_status CODE cmd...: runs cmd (stdout → $WORK/stdout, stderr → $WORK/stderr), checks the exit code.
expect_status() {
  local code=$1; shift
  local rc=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  if [[ $rc != "$code" ]]; then
    echo "--- stderr:" >&2; cat "$WORK/stderr" >&2
    fail "exit code $rc, expected $code: $*"
  fi
}

# expect_error CODE TEXT cmd...: exit code CODE and exactly one stderr line, containing TEXT.
expect_error() {
  local code=$1 text=$2; shift 2
  expect_status "$code" "$@"
  grep -qF -- "$text" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "stderr lacks '$text': $*"; }
  [[ $(wc -l <"$WORK/stderr") == 1 ]] || { cat "$WORK/stderr" >&2; fail "stderr is not one line: $*"; }
}

# same_files DIR_A DIR_B: every features file, file_names.txt are byte-identical.
same_files() {
  local a=$1 b=$2 f n=0
  cmp "$a/file_names.txt" "$b/file_names.txt" || fail "file_names.txt differ: $a $b"
  while IFS= read -r f; do
    cmp "$a/$f" "$b/$f" || fail "$f differs: $a vs $b"
    n=$((n + 1))
  done < <(cd "$a" && find . -name 'features*' ! -name '*.journal*' -type f | sort)
  [[ $n -gt 0 ]] || fail "no features files in $a"
  [[ $(cd "$a" && find . -name 'features*' ! -name '*.journal*' -type f | sort) == $(cd "$b" && find . -name 'features*' ! -name '*.journal*' -type f | sort) ]] \
    || fail "different sets of features files in $a and $b"
}
