# SPDX-License-Identifier: MIT
# trellohook — the two README commands and friends. The real build is Meson;
# this file only makes "one command on a fresh Debian machine" true.
#
#   make          build everything into build/
#   make run      install missing packages, build the two programs, serve (demo without
#                 Trello variables); never needs a test package
#   make test     install missing packages, build with the tests enabled, run every test suite
#   make screenshots  refresh the README's pictures in docs/screenshots/ (browser tests)
#   make sanitize unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fault    the store suites (SQLite and PostgreSQL) and tests/fault/ in a fault-injection build
#   make lint     formatting (.clang-format) and banned C functions
#   make check-exports  the installed library exports th_* names only
#   make valgrind unit tests under valgrind: no memory errors, no leaks
#   make fuzz     libFuzzer targets (fuzz/) under ASan + UBSan, FUZZ_SECONDS each (default 60)
#   make tsan     unit tests and the receive/dispatch e2e tests under ThreadSanitizer
#   make install  install under PREFIX (default /usr/local) into DESTDIR: the programs, the
#                 library, its header and .pc, man pages, trellohook.service and its env file
#   make deb      Debian packages (dpkg-buildpackage -us -uc -b): written to .., the tree stays clean
#   make deps     apt-get install only the Debian packages that are missing

PREFIX ?= /usr/local
BUILD  ?= build
ASAN   ?= build-asan
FAULT  ?= build-fault
FUZZ   ?= build-fuzz
TSAN   ?= build-tsan
FUZZ_SECONDS ?= 60

# Debian 12 packages: to build, to run, and what only the tests need.
BUILD_PKGS = gcc make pkg-config meson ninja-build libmicrohttpd-dev libcurl4-openssl-dev \
             libjansson-dev libssl-dev libsodium-dev libsqlite3-dev liblz4-dev libpq-dev
RUN_PKGS   = ca-certificates curl
TEST_PKGS  = clang-format libcmocka-dev nodejs npm chromium postgresql valgrind sqlite3 wrk \
             mandoc man-db systemd bsdutils binutils
FUZZ_PKGS  = clang libfuzzer-14-dev

.PHONY: check-layers all build programs test-build deps deps-test run test screenshots sanitize fault lint \
        valgrind check-exports install deb clean browser-deps \
        fuzz tsan

all: build

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# What `make run` needs and nothing more: the tests stay unbuilt, whatever the
# build directory was configured with.
programs: $(BUILD)/build.ninja
	ninja -C $(BUILD) trellohook trello-mock

# The tests on, whatever `make run` configured before: an existing build
# directory is reconfigured, so a cmocka installed since is found.
test-build:
	@if [ -f $(BUILD)/build.ninja ]; then \
		meson setup --reconfigure $(BUILD) -Dtests=enabled >/dev/null; \
	else meson setup $(BUILD) --prefix=$(PREFIX) -Dtests=enabled; fi
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh $(BUILD_PKGS) $(RUN_PKGS)

deps-test:
	@scripts/deps.sh $(BUILD_PKGS) $(RUN_PKGS) $(TEST_PKGS)

run: deps programs
	@scripts/run.sh

test: deps-test test-build browser-deps
	@scripts/test.sh $(BUILD)

# The browser tests save their screenshots under the build directory; this
# points them at the tracked pictures instead (commit the result by hand).
screenshots: deps-test test-build browser-deps
	TH_BUILD=$(CURDIR)/$(BUILD) TH_SCREENSHOTS=$(CURDIR)/docs/screenshots \
		node --test tests/browser/*.test.mjs

# playwright-core for tests/browser (drives Debian's chromium; no browser download)
browser-deps:
	@[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm install --no-audit --no-fund)

sanitize: deps-test
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) -Dtests=enabled -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug
	ninja -C $(ASAN)
	meson test -C $(ASAN) --suite unit --print-errorlogs

# The store with fault injection built in (meson option fault_injection, off
# by default; src/store/store_fault.h): the Nth prepare/step/commit (SQLite)
# or query (PostgreSQL) fails, at every N in turn; then tests/fault/ drives a
# real serve of that build through a failing store (TH_STORE_FAULT).
fault: deps-test
	@[ -f $(FAULT)/build.ninja ] || meson setup $(FAULT) -Dtests=enabled -Dfault_injection=true
	ninja -C $(FAULT)
	meson test -C $(FAULT) store store_pg --print-errorlogs
	TH_BUILD=$(CURDIR)/$(FAULT) node --test tests/fault/*.test.mjs

# The architecture's rules: include ranks, who calls the store, lengths.
check-layers:
	@scripts/check-layers.sh

# The fuzzers need clang; the library is built with libFuzzer's coverage
# hooks, ASan and UBSan. -Dwerror=false: clang warns where gcc does not, and
# the gcc builds are the ones that hold the code to -Werror.
fuzz: deps-test
	@scripts/deps.sh $(FUZZ_PKGS)
	@[ -f $(FUZZ)/build.ninja ] || CC=clang meson setup $(FUZZ) -Dfuzz=enabled -Dtests=disabled \
		-Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized \
		"-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all -Wno-unknown-warning-option"
	ninja -C $(FUZZ)
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ)

# ThreadSanitizer (gcc): fails on any report, also from the servers the e2e
# tests start (scripts/tsan.sh collects every process's report file).
tsan: deps-test browser-deps
	@[ -f $(TSAN)/build.ninja ] || meson setup $(TSAN) -Dtests=enabled -Db_sanitize=thread \
		-Db_lundef=false -Dbuildtype=debugoptimized
	ninja -C $(TSAN)
	@scripts/tsan.sh $(TSAN)

lint:
	@scripts/lint.sh

check-exports: build
	@scripts/check-exports.sh $(BUILD)

valgrind: deps-test test-build
	meson test -C $(BUILD) --suite unit --print-errorlogs --timeout-multiplier 4 \
		--wrapper 'valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9'

# PREFIX is applied to an existing build directory too (it is fixed at setup).
install: $(BUILD)/build.ninja
	@[ "$$(meson configure $(BUILD) | awk '$$1 == "prefix" {print $$2}')" = "$(PREFIX)" ] || \
		meson configure $(BUILD) -Dprefix=$(PREFIX)
	ninja -C $(BUILD)
	meson install -C $(BUILD) --destdir "$(DESTDIR)"

# trellohook_*.deb, libtrellohook0_*.deb and libtrellohook-dev_*.deb land in ..
deb:
	@scripts/deps.sh $(BUILD_PKGS) debhelper dpkg-dev
	dpkg-buildpackage -us -uc -b
	debian/rules clean

clean:
	rm -rf $(BUILD) $(ASAN) $(FAULT) $(FUZZ) $(TSAN)
