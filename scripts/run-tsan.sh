#!/bin/sh
# `make tsan`: the concurrency code under ThreadSanitizer. Runs the
# scheduler's, the checkpointer's, the index's, the store's on files, the
# SQLite connector's and the read-ahead's C tests (the SQLite store
# commits on a writer thread, a sqlite.table batch is written on its
# connection's, a walk's files are read ahead on one) and the concurrency,
# parallel, live and crash-protocol specs with a -fsanitize=thread build
# (the specs' tide processes are that build too);
# any ThreadSanitizer report fails the run. Ends with "N passed, N failed".
BUILD=${BUILD:-build-tsan}
BUSTED=${BUSTED:-/usr/bin/busted}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Reports go to stderr of whichever process races; halt_on_error makes the
# racing process fail, and the log is searched as well.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export TSAN_OPTIONS
# ThreadSanitizer needs the address layout it knows: no randomization.
run() { setarch "$(uname -m)" -R "$@"; }
failed=0
passed=0
for t in test_scheduler test_checkpointer test_index test_store \
         test_store_rows test_store_batch test_store_reads test_sqlite_db \
         test_readahead; do
  if run "$BUILD/test/$t" >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  cat "$log"
done
# live_spec: the index's load on its thread across live cycles; its
# stock-lua5.4 hosts cannot load a ThreadSanitizer build and are pending.
TIDE_TSAN=1 TIDE_BUILD=$BUILD run "$BUILD/tide" run "$BUSTED" -o TAP \
  test/spec/concurrency_spec.lua test/spec/parallel_spec.lua \
  test/spec/live_spec.lua test/spec/crash_protocol_spec.lua >"$log" 2>&1
status=$?
grep -v '^ok ' "$log"
ok=$(grep '^ok ' "$log" | grep -vc '# SKIP')
notok=$(grep -c '^not ok ' "$log")
reports=$(grep -c 'WARNING: ThreadSanitizer' "$log")
passed=$((passed + ok))
failed=$((failed + notok + reports))
if [ "$status" -ne 0 ] && [ "$notok" -eq 0 ] && [ "$reports" -eq 0 ]; then
  failed=$((failed + 1))
fi
echo "ThreadSanitizer reports: $reports; skipped: $(grep -c '# SKIP' "$log")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
