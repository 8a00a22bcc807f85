# tide: build, test, bench, demo, asan, fuzz, install.
# `make test` and `make demo` install missing dependencies first (deps), then
# re-enter make so pkg-config is asked only once the packages are there.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
OPT     ?= -O2 -g
SAN     ?=
LUA     ?= lua5.4
BUSTED  ?= /usr/bin/busted
FUZZ_SECONDS ?= 60

PKGS     = lua5.4 libb2 sqlite3 libuv libcurl zlib gumbo libpq
WARN     = -Wall -Wextra -Wshadow -Wundef -Wwrite-strings \
           -Wmissing-declarations -Werror
XCFLAGS  = -std=c11 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -fPIC \
           -fvisibility=hidden $(WARN) $(OPT) $(SAN) \
           $(shell pkg-config --cflags $(PKGS)) -Isrc -MMD -MP $(CFLAGS)
# libcurl and libpq are not linked: they load when first used (dynlib.h),
# so a process that needs neither does not pay for their start.
DEP_LIBS = $(shell pkg-config --libs libb2 sqlite3 libuv zlib gumbo) \
           -ldl -lm -lpthread
# The C tests reach PostgreSQL themselves too (test_store's SQL checks).
TEST_LIBS = $(shell pkg-config --libs libpq)
LUA_LIBS = $(shell pkg-config --libs lua5.4)

CORE_SRC = $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
CTEST_SRC = $(wildcard test/c/test_*.c)
CTESTS   = $(CTEST_SRC:test/c/%.c=$(BUILD)/test/%)
FUZZ_SRC = $(wildcard test/fuzz/fuzz_*.c)
REPLAYS  = $(FUZZ_SRC:test/fuzz/%.c=$(BUILD)/test/replay_%)
FUZZERS  = $(FUZZ_SRC:test/fuzz/%.c=build-fuzz/%)
BENCH_C  = $(wildcard scripts/bench/*.c)
BENCH_BIN = $(BENCH_C:scripts/bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-run demo demo-run asan tsan tsan-run fuzz \
        fuzz-run bench bench-run crash crash-run crash-workers \
        crash-workers-run crash-live crash-live-run install clean

all: $(BUILD)/tide $(BUILD)/tide.so $(BUILD)/libtide.a $(BUILD)/libtide.so \
     $(BUILD)/tide_vec.so $(BUILD)/examples/embed_host

deps:
	@sh scripts/setup.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -c $< -o $@

$(BUILD)/libtide.a: $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The Lua C module. `require "tide.core"` finds luaopen_tide_core in it
# through Lua's all-in-one loader when LUA_CPATH has build/?.so: build/tide
# itself is the host program, so the module cannot live in build/tide/.
$(BUILD)/tide.so: $(CORE_OBJ)
	$(CC) -shared $(OPT) $(SAN) -o $@ $^ $(DEP_LIBS) $(LDFLAGS)

# The C embedding library (tide.h) for hosts that link tide instead of
# loading it as a Lua module: the same objects, linked with Lua.
$(BUILD)/libtide.so: $(CORE_OBJ)
	$(CC) -shared $(OPT) $(SAN) -Wl,-soname,libtide.so.0 -o $@ $^ \
	  $(LUA_LIBS) $(DEP_LIBS) $(LDFLAGS)

# The vector functions as a SQLite loadable extension (sqlite_vec.h), for
# any SQLite client: `.load build/tide_vec` in the sqlite3 shell. Never
# sanitized: the programs that load it are not.
$(BUILD)/tide_vec.so: src/sqlite_vec.c src/vec.c src/vec.h
	@mkdir -p $(@D)
	$(CC) $(filter-out $(SAN),$(XCFLAGS)) -DTIDE_VEC_EXTENSION -shared \
	  -o $@ src/sqlite_vec.c src/vec.c -lm $(LDFLAGS)

# examples/embed_host: a host program with its own frame loop.
$(BUILD)/examples/embed_host: examples/embed_host/embed_host.c \
                              $(BUILD)/libtide.a
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -DTIDE_LUA_DIR='"$(abspath lua)"' -o $@ $< \
	  $(BUILD)/libtide.a $(LUA_LIBS) $(DEP_LIBS) $(LDFLAGS)

$(BUILD)/tide: $(BUILD)/obj/main.o $(BUILD)/libtide.a
	$(CC) $(OPT) $(SAN) -rdynamic -o $@ $^ $(LUA_LIBS) $(DEP_LIBS) $(LDFLAGS)

$(BUILD)/test/%: test/c/%.c test/c/check.h $(BUILD)/libtide.a
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -Itest/c -o $@ $< $(BUILD)/libtide.a \
	  $(LUA_LIBS) $(DEP_LIBS) $(TEST_LIBS) $(LDFLAGS)

# The state store's tests share their fixture.
$(BUILD)/test/test_store $(BUILD)/test/test_store_rows \
  $(BUILD)/test/test_store_batch $(BUILD)/test/test_store_reads \
  $(BUILD)/test/test_store_pg: test/c/store_fixture.h

# Replays a fuzz target's committed corpus without libFuzzer.
$(BUILD)/test/replay_%: test/fuzz/%.c test/fuzz/replay.c $(BUILD)/libtide.a
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -o $@ test/fuzz/replay.c $< $(BUILD)/libtide.a \
	  $(LUA_LIBS) $(DEP_LIBS) $(LDFLAGS)

$(BUILD)/bench/%: scripts/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(XCFLAGS) -o $@ $< $(BUILD)/libtide.a $(LUA_LIBS) $(DEP_LIBS)

test: deps
	@$(MAKE) --no-print-directory test-run

test-run: all $(CTESTS) $(REPLAYS)
	@BUILD=$(BUILD) LUA=$(LUA) BUSTED=$(BUSTED) sh scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@BUILD=$(BUILD) sh scripts/demo.sh

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
# The stock lua5.4 is not instrumented: the spec that loads the module into
# it preloads clang's ASan runtime; the spec that links a host program
# against the installed library links it with the same sanitizers.
asan: deps
	@TIDE_ASAN_PRELOAD=$$(clang -print-file-name=libclang_rt.asan-x86_64.so) \
	  TIDE_HOST_CC="clang -fsanitize=address,undefined" \
	  $(MAKE) --no-print-directory BUILD=build-asan CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=all" test-run

# The concurrency code (scheduler, waits, worker threads) under
# ThreadSanitizer: its C test and the concurrency and parallel specs.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=thread -fno-omit-frame-pointer" tsan-run

tsan-run: all $(BUILD)/test/test_scheduler $(BUILD)/test/test_checkpointer \
  $(BUILD)/test/test_index $(BUILD)/test/test_store \
  $(BUILD)/test/test_store_rows $(BUILD)/test/test_store_batch \
  $(BUILD)/test/test_store_reads $(BUILD)/test/test_sqlite_db \
  $(BUILD)/test/test_readahead
	@BUILD=$(BUILD) BUSTED=$(BUSTED) sh scripts/run-tsan.sh

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-run

build-fuzz/%: test/fuzz/%.c $(CORE_SRC)
	@mkdir -p build-fuzz/obj
	clang -std=c11 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -g -O1 \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  $(shell pkg-config --cflags $(PKGS)) -Isrc -o $@ $< $(CORE_SRC) \
	  $(LUA_LIBS) $(DEP_LIBS)

# Each target runs FUZZ_SECONDS, growing a scratch corpus seeded from the
# committed one; then only the inputs that add coverage are merged into
# test/fuzz/corpus/NAME, which `make test` replays.
fuzz-run: $(FUZZERS)
	@for f in $(FUZZERS); do \
	  name=$${f#build-fuzz/fuzz_}; \
	  mkdir -p test/fuzz/corpus/$$name build-fuzz/corpus/$$name; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -print_final_stats=1 build-fuzz/corpus/$$name \
	    test/fuzz/corpus/$$name || exit 1; \
	  $$f -merge=1 -use_counters=0 -max_len=4096 test/fuzz/corpus/$$name \
	    build-fuzz/corpus/$$name 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new" ; \
	done

# The crash campaign (test/crash/campaign.lua): CRASH_TRIALS random SIGKILLs
# over real runs, each compared with a clean run; CRASH_SEED replays one.
CRASH_TRIALS ?= 200
crash: deps
	@$(MAKE) --no-print-directory crash-run

crash-run: all
	@$(BUILD)/tide run test/crash/campaign.lua --trials $(CRASH_TRIALS) \
	  --tide $(BUILD)/tide $(if $(CRASH_SEED),--seed $(CRASH_SEED))

# The same over updates shared by CRASH_WORKERS workers on a PostgreSQL
# store of the campaign's own; a kill takes the lead or one of them.
CRASH_WORKERS ?= 2
CRASH_WORKERS_TRIALS ?= 60
crash-workers: deps
	@$(MAKE) --no-print-directory crash-workers-run

crash-workers-run: all
	@$(BUILD)/tide run test/crash/campaign.lua \
	  --trials $(CRASH_WORKERS_TRIALS) --workers $(CRASH_WORKERS) \
	  --tide $(BUILD)/tide $(if $(CRASH_SEED),--seed $(CRASH_SEED))

# Live mode's: tide live under a random stream of file and folder changes,
# killed with SIGKILL and started again, must reach a clean run's targets
# (test/crash/live_campaign.lua); CRASH_SEED replays one.
CRASH_LIVE_TRIALS ?= 20
crash-live: deps
	@$(MAKE) --no-print-directory crash-live-run

crash-live-run: all
	@$(BUILD)/tide run test/crash/live_campaign.lua \
	  --trials $(CRASH_LIVE_TRIALS) --tide $(BUILD)/tide \
	  $(if $(CRASH_SEED),--seed $(CRASH_SEED))

bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: all $(BENCH_BIN)
	@BUILD=$(BUILD) sh scripts/bench/run.sh

LUADIR  = $(DESTDIR)$(PREFIX)/share/lua/5.4
CMODDIR = $(DESTDIR)$(PREFIX)/lib/lua/5.4/tide
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(LUADIR)/tide $(CMODDIR)
	install -m 755 $(BUILD)/tide $(DESTDIR)$(PREFIX)/bin/tide
	install -m 644 $(BUILD)/libtide.a $(DESTDIR)$(PREFIX)/lib/libtide.a
	install -m 755 $(BUILD)/libtide.so $(DESTDIR)$(PREFIX)/lib/libtide.so.0
	ln -sf libtide.so.0 $(DESTDIR)$(PREFIX)/lib/libtide.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e "s|@VERSION@|$$(sed -n \
	  's/^#define TIDE_VERSION \"\(.*\)\"/\1/p' src/tide.h)|" \
	  scripts/tide.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/tide.pc
	install -m 644 src/tide.h $(DESTDIR)$(PREFIX)/include/tide.h
	install -m 755 $(BUILD)/tide.so $(CMODDIR)/core.so
	install -m 755 $(BUILD)/tide_vec.so $(DESTDIR)$(PREFIX)/lib/tide_vec.so
	install -m 644 lua/tide/*.lua $(LUADIR)/tide/

clean:
	rm -rf build build-asan build-fuzz

-include $(CORE_OBJ:.o=.d) $(BUILD)/obj/main.d
