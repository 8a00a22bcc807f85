#!/bin/sh
# Runs every suite (C unit tests, fuzz corpus replays, busted specs) and
# ends with one line "N passed, N failed" summing them all.
BUILD=${BUILD:-build}
BUSTED=${BUSTED:-/usr/bin/busted}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # $1 suite name; reads the suite's "N passed, N failed" from $log
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$1: no result (crashed?)"; failed=$((failed + 1)); return
  fi
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  passed=$((passed + p)); failed=$((failed + f))
  echo "$1: $line"
}

for t in "$BUILD"/test/test_*; do
  [ -x "$t" ] || continue
  "$t" >"$log" 2>&1; status=$?
  grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
  count "$(basename "$t")"
  [ $status -ne 0 ] && [ -z "$(grep -E ' [1-9][0-9]* failed' "$log")" ] &&
    failed=$((failed + 1))
done

# The state store's suites once more on a PostgreSQL store (one suite, two
# backends; test_store_pg has tests of PostgreSQL only), with a server of
# its own.
pgdir=$(mktemp -d /tmp/tide-store-pg.XXXXXX)
rmdir "$pgdir"
if sh scripts/pg_server.sh start "$pgdir" >"$log" 2>&1; then
  for t in test_store test_store_rows test_store_batch test_store_reads \
           test_store_pg; do
    TIDE_TEST_PG="postgresql:///postgres?host=$pgdir&user=tide" \
      "$BUILD/test/$t" >"$log" 2>&1; status=$?
    grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
    count "$t on PostgreSQL"
    [ $status -ne 0 ] && [ -z "$(grep -E ' [1-9][0-9]* failed' "$log")" ] &&
      failed=$((failed + 1))
  done
  sh scripts/pg_server.sh stop "$pgdir" >/dev/null 2>&1
else
  cat "$log"
  echo "the store's suites on PostgreSQL: the server did not start"
  failed=$((failed + 1))
fi

# The embedding API, the file watcher and the HTTP client under valgrind
# as well: no leak, no invalid access (not in a sanitizer build, which has
# its own checks).
case $BUILD in *asan* | *tsan*) ;; *)
  for t in test_engine test_watch test_http; do
    [ -x "$BUILD/test/$t" ] || continue
    valgrind -q --leak-check=full --error-exitcode=9 "$BUILD/test/$t" \
      >"$log" 2>&1; status=$?
    grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
    count "valgrind $t"
    [ $status -ne 0 ] && failed=$((failed + 1))
  done ;;
esac

for r in "$BUILD"/test/replay_fuzz_*; do
  [ -x "$r" ] || continue
  name=${r##*/replay_fuzz_}
  "$r" "test/fuzz/corpus/$name" >"$log" 2>&1
  tail -n 20 "$log" | grep -v -E '^[0-9]+ passed' 
  count "fuzz corpus $name"
done

# The short crash campaign: random SIGKILLs over real runs (make crash runs
# the long one). The seed is printed; CRASH_SEED=S replays it.
"$BUILD/tide" run test/crash/campaign.lua --trials "${CRASH_TRIALS:-20}" \
  --tide "$BUILD/tide" ${CRASH_SEED:+--seed "$CRASH_SEED"} >"$log" 2>&1
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
count "crash campaign"

# And live mode's, short (make crash-live runs the long one).
"$BUILD/tide" run test/crash/live_campaign.lua \
  --trials "${CRASH_LIVE_TRIALS:-3}" --ops 150 --tide "$BUILD/tide" \
  ${CRASH_SEED:+--seed "$CRASH_SEED"} >"$log" 2>&1
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log"
count "live crash campaign"

# The specs run inside the tide host itself (a Lua 5.4 interpreter), so an
# ASan build checks the C core under the whole spec suite too.
TIDE_BUILD=$BUILD "$BUILD/tide" run "$BUSTED" -o utfTerminal \
  --exclude-tags="${TIDE_EXCLUDE_TAGS:-none}" test/spec >"$log" 2>&1
busted_status=$?
cat "$log"
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
  grep -E '[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' | tail -n 1)
if [ -z "$summary" ]; then
  echo "specs: no result"; failed=$((failed + 1))
else
  s=$(echo "$summary" | grep -oE '[0-9]+ success' | grep -oE '[0-9]+')
  f=$(echo "$summary" | grep -oE '[0-9]+ failure' | grep -oE '[0-9]+')
  e=$(echo "$summary" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
  passed=$((passed + s)); failed=$((failed + f + e))
  echo "specs: $s passed, $((f + e)) failed"
  # A clean summary but a failing exit (a sanitizer's report at exit, say)
  # is a failure too.
  if [ "$busted_status" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
    echo "specs: the runner exited with status $busted_status"
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
