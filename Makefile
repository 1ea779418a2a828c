# secrets-encrypt — plain GNU make. Every path is ?=-overridable; `make V=1` shows commands.
#
#   make                 library, secrets-encrypt, secrets-encrypt-hook
#   make check           installs missing Debian packages (as root), builds, runs every test
#   make check SANITIZE=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check UNIT_ONLY=1  only the Check suites (no integration scripts)
#   make check-valgrind  unit tests under valgrind
#   make demo            a full key rotation under a private systemd (see README)
#   make bench | fuzz | install | format-check | clean
#   make stress          the reliability suite with long settings; make fuzz-run FUZZ_SECONDS=N

VERSION := 0.1.0
SOVERSION := 0

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
LIBEXECDIR ?= $(PREFIX)/libexec
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
PKG_CONFIG ?= pkg-config
SYSTEMDUNITDIR ?= $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
CATALOGDIR ?= $(shell $(PKG_CONFIG) --variable=catalogdir systemd 2>/dev/null || echo /usr/lib/systemd/catalog)
BASHCOMPDIR ?= $(shell $(PKG_CONFIG) --variable=completionsdir bash-completion 2>/dev/null || echo /usr/share/bash-completion/completions)
# zsh has no .pc file: Debian's vendor directory where it exists, else zsh's own site-functions
ZSHCOMPDIR ?= $(shell [ -d /usr/share/zsh/vendor-completions ] && echo /usr/share/zsh/vendor-completions || echo $(DATADIR)/zsh/site-functions)

CC ?= cc
CLANG ?= clang
B ?= build

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

# Debian 12 packages needed to build and test (make deps installs them when run as root).
DEB_PACKAGES := build-essential pkg-config libsystemd-dev libssl-dev libyaml-dev libjson-c-dev check \
	libsqlite3-dev sqlite3 libcurl4-openssl-dev libsodium-dev etcd-server etcd-client openssl curl \
	systemd util-linux ansible-core prometheus-node-exporter valgrind clang libclang-rt-14-dev \
	uuid-runtime python3 python3-cryptography python3-nacl jq prometheus
# packaging (make deb, make rpm, tests/integration/test-package.sh) and shell completion tests
DEB_PACKAGES += debhelper lintian debootstrap debian-archive-keyring rpm man-db fakeroot bash-completion zsh
# kine on PostgreSQL and MySQL/MariaDB: client headers, and the servers the tests start
DEB_PACKAGES += postgresql libpq-dev mariadb-server libmariadb-dev

# libcurl is compiled against but loaded with dlopen() (module/store/curl-dlopen.c): only the etcd
# datastore needs it and its dependency tree would slow every start of the hook.
PKGS := libsystemd openssl yaml-0.1 json-c sqlite3 libsodium
PKGS_DLOPEN := libcurl
# the PostgreSQL and MySQL/MariaDB client libraries likewise (module/store/sql-dlopen.c)
PKGS_DLOPEN += libpq libmariadb

# module/ by subsystem, in dependency order: a folder uses only the folders before it
# (tests/integration/test-layout.sh checks that).
MODULE_DIRS := base journal config state host store crypto cluster rotation systemd fleet
MODULE_INCLUDES := -Imodule $(addprefix -Imodule/,$(MODULE_DIRS))

WARNINGS := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wundef \
	-Wpointer-arith -Wimplicit-fallthrough -Wno-unused-parameter -Wvla -Wwrite-strings
WERROR ?= 1
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

OPT ?= -O2 -g
CFLAGS ?=
LDFLAGS ?=
BASE_CFLAGS := -std=gnu11 $(OPT) $(WARNINGS) -fPIC -fvisibility=hidden -MMD -MP \
	-DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -D_GNU_SOURCE \
	-DSE_VERSION=\"$(VERSION)\" -DSE_SYSCONFDIR=\"$(SYSCONFDIR)\" -DSE_LIBEXECDIR=\"$(LIBEXECDIR)\" \
	$(MODULE_INCLUDES) -Itests $(shell $(PKG_CONFIG) --cflags $(PKGS) $(PKGS_DLOPEN) 2>/dev/null)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -ldl -lpthread -lm
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check $(PKGS_DLOPEN) 2>/dev/null)

ifeq ($(SANITIZE),1)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BASE_CFLAGS += $(SAN)
LDFLAGS += $(SAN)
B := build-sanitize
endif

ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)

LIB_SRC := $(sort $(foreach d,$(MODULE_DIRS),$(wildcard module/$(d)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
LIB_HEADERS := module/secrets-encrypt.h $(sort $(foreach d,$(MODULE_DIRS),$(wildcard module/$(d)/se-*.h)))
SONAME := libsecrets-encrypt.so.$(SOVERSION)
LIB_SO := $(B)/libsecrets-encrypt.so.$(VERSION)
LIB_A := $(B)/libsecrets-encrypt-internal.a

CLI_SRC := $(sort $(wildcard hooks/secrets-encrypt.c hooks/cmd-*.c hooks/cli-*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
HOOK_SRC := $(sort $(wildcard hooks/secrets-encrypt-hook.c hooks/hook-*.c))
HOOK_OBJ := $(HOOK_SRC:%.c=$(B)/%.o)
CLI := $(B)/secrets-encrypt
HOOK := $(B)/secrets-encrypt-hook

TEST_LIB_SRC := $(sort $(wildcard tests/lib-*.c))
TEST_LIB_OBJ := $(TEST_LIB_SRC:%.c=$(B)/%.o)
TEST_SRC := $(sort $(wildcard tests/test-*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/tests/tools/%)
BENCH_SRC := $(sort $(wildcard tests/bench/bench-*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/tests/bench/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

.SECONDARY:
.DELETE_ON_ERROR:

.PHONY: all
all: $(LIB_SO) $(CLI) $(HOOK)

$(B)/%.o: %.c
	$(call say,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(LIB_SO): $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -Wl,-z,relro -Wl,-z,now $(LDFLAGS) \
		-o $@ $(LIB_OBJ) $(LIBS)
	$(Q)ln -sf libsecrets-encrypt.so.$(VERSION) $(B)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(B)/libsecrets-encrypt.so

# Same objects, linked statically into the tests so they can reach internal functions.
$(LIB_A): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(LIB_OBJ)

RPATH := -Wl,-rpath,'$$ORIGIN'
$(CLI): $(CLI_OBJ) $(LIB_SO)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(RPATH) -o $@ $(CLI_OBJ) -L$(B) -lsecrets-encrypt $(LIBS)

$(HOOK): $(HOOK_OBJ) $(LIB_SO)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(RPATH) -o $@ $(HOOK_OBJ) -L$(B) -lsecrets-encrypt $(LIBS)

$(B)/tests/test-%: $(B)/tests/test-%.o $(TEST_LIB_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIB_OBJ) $(LIB_A) $(CHECK_LIBS) $(LIBS)

$(B)/tests/tools/%: $(B)/tests/tools/%.o $(TEST_LIB_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIB_OBJ) $(LIB_A) $(CHECK_LIBS) $(LIBS)

$(B)/tests/bench/%: $(B)/tests/bench/%.o $(TEST_LIB_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIB_OBJ) $(LIB_A) $(CHECK_LIBS) $(LIBS)

.PHONY: tests
tests: all $(LIB_A) $(TEST_BIN) $(TOOL_BIN)

# ---- dependencies --------------------------------------------------------------------------
.PHONY: deps
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing missing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
		else \
			echo "Missing Debian packages. Run as root:"; echo "  apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

# ---- tests -----------------------------------------------------------------------------------
.PHONY: check check-valgrind check-build
check: deps
	$(Q)$(MAKE) --no-print-directory check-build
	$(Q)SE_BUILD=$(B) SE_SANITIZE=$(SANITIZE) tests/run-tests.sh $(if $(filter 1,$(UNIT_ONLY)),--unit-only)

check-build: tests

check-valgrind: deps
	$(Q)$(MAKE) --no-print-directory check-build
	$(Q)SE_BUILD=$(B) SE_VALGRIND=1 tests/run-tests.sh --unit-only

# ---- fuzzing (libFuzzer) ----------------------------------------------------------------------
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DSE_FUZZING \
	-DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -DSE_VERSION=\"$(VERSION)\" \
	-DSE_SYSCONFDIR=\"$(SYSCONFDIR)\" $(MODULE_INCLUDES) -Itests $(shell $(PKG_CONFIG) --cflags $(PKGS) $(PKGS_DLOPEN) 2>/dev/null)
.PHONY: fuzz
fuzz: $(FUZZ_BIN)
# The library is compiled once with the fuzzer's instrumentation and linked into every target.
FUZZ_LIB_OBJ := $(LIB_SRC:module/%.c=build-fuzz/obj/%.o)
build-fuzz/obj/%.o: module/%.c
	$(call say,FUZZCC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	$(call say,FUZZ,$@)
	@mkdir -p build-fuzz
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJ) $(LIBS)

# ---- reliability suite: fault injection, allocation failures, fuzz runs, stress -----------------
# tests/preload/fault-inject.c: an LD_PRELOAD library that SIGKILLs the process at, or fails, its
# N-th write/fsync/rename/unlink (tests/integration/test-crash-points.sh, test-io-faults.sh).
FAULT_SO := $(B)/tests/fault-inject.so
$(FAULT_SO): tests/preload/fault-inject.c
	$(call say,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -fPIC -shared -D_GNU_SOURCE -Wall -Wextra -Werror -o $@ $< -ldl
tests: $(FAULT_SO)

# test-alloc-failure wraps the allocation calls of the library objects to fail the N-th one.
ALLOC_WRAP := $(foreach f,malloc calloc realloc reallocarray free strdup strndup asprintf vasprintf,-Wl,--wrap=$(f))
$(B)/tests/test-alloc-failure: $(B)/tests/test-alloc-failure.o $(TEST_LIB_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(ALLOC_WRAP) -o $@ $< $(TEST_LIB_OBJ) $(LIB_A) $(CHECK_LIBS) $(LIBS)

# Each libFuzzer target over its committed corpus (tests/fuzz/corpus/<target>/) for FUZZ_SECONDS,
# in fork mode (FUZZ_FORK jobs, going on past a crash); every crash is kept in build-fuzz/crashes/.
FUZZ_SECONDS ?= 300
FUZZ_FORK ?= 2
.PHONY: fuzz-run stress
fuzz-run: fuzz
	$(Q)SE_FUZZ_SECONDS=$(FUZZ_SECONDS) SE_FUZZ_FORK=$(FUZZ_FORK) SE_FUZZ_ONLY=$(FUZZ_ONLY) \
		bash tests/integration/test-fuzz-smoke.sh

# The whole suite with the long settings: more kill points, longer fuzzing, bigger datasets.
stress: deps
	$(Q)$(MAKE) --no-print-directory check-build
	$(Q)$(MAKE) --no-print-directory fuzz
	$(Q)SE_BUILD=$(B) SE_SANITIZE=$(SANITIZE) SE_STRESS=1 SE_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		SE_TEST_CRASH_TIMED=100 SE_TEST_CRASH_SECRETS=2000 SE_EXPLORER_STEPS=10000 tests/run-tests.sh

# ---- benchmarks --------------------------------------------------------------------------------
.PHONY: bench
bench: deps
	$(Q)$(MAKE) --no-print-directory OPT="-O2 -g" all $(LIB_A) $(BENCH_BIN) $(TOOL_BIN)
	$(Q)SE_BUILD=$(B) tests/bench/run-bench.sh

# ---- demo --------------------------------------------------------------------------------------
.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(LIB_A) $(TOOL_BIN)
	$(Q)SE_BUILD=$(B) tests/demo.sh

# ---- install -----------------------------------------------------------------------------------
SUBST = sed -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'
.PHONY: install
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/secrets-encrypt \
		$(DESTDIR)$(INCLUDEDIR)/secrets-encrypt $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(CATALOGDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libsecrets-encrypt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsecrets-encrypt.so
	install -m 0644 $(LIB_HEADERS) $(DESTDIR)$(INCLUDEDIR)/secrets-encrypt/
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(HOOK) $(DESTDIR)$(LIBEXECDIR)/secrets-encrypt/
	for f in man/*.8; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(MANDIR)/man8/ || true; done
	[ ! -f units/secrets-encrypt.catalog ] || install -m 0644 units/secrets-encrypt.catalog $(DESTDIR)$(CATALOGDIR)/
	install -D -m 0644 units/secrets-encrypt.rules.yml $(DESTDIR)$(DATADIR)/secrets-encrypt/secrets-encrypt.rules.yml
# The API-server drop-ins go where systemd does not read them: installing must not change how
# a running server starts. `secrets-encrypt setup` copies the one for the unit into
# /etc/systemd/system/<unit>.d/.
	for d in units/*.service.d; do \
		[ -d "$$d" ] || continue; \
		install -d $(DESTDIR)$(DATADIR)/secrets-encrypt/dropins/$$(basename $$d); \
		for f in $$d/*.conf; do \
			out=$(DESTDIR)$(DATADIR)/secrets-encrypt/dropins/$$(basename $$d)/$$(basename $$f); \
			$(SUBST) "$$f" > $$out && chmod 0644 $$out || exit 1; \
		done; \
	done
# scheduled rotation, disabled until `systemctl enable --now secrets-encrypt-rotate.timer`
	for f in units/secrets-encrypt-rotate.service units/secrets-encrypt-rotate.timer; do \
		$(SUBST) "$$f" > $(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename $$f) && chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename $$f) || exit 1; \
	done
	install -D -m 0644 completions/secrets-encrypt.bash $(DESTDIR)$(BASHCOMPDIR)/secrets-encrypt
	install -D -m 0644 completions/_secrets-encrypt $(DESTDIR)$(ZSHCOMPDIR)/_secrets-encrypt
# the example settings (all commented out) never replace an existing file
	[ -e $(DESTDIR)$(SYSCONFDIR)/secrets-encrypt/config.yaml ] || \
		install -D -m 0644 packaging/config.yaml $(DESTDIR)$(SYSCONFDIR)/secrets-encrypt/config.yaml

# ---- style -------------------------------------------------------------------------------------
.PHONY: format-check format
format-check:
	$(Q)clang-format --dry-run --Werror module/*.h module/*/*.[ch] hooks/*.[ch]
format:
	$(Q)clang-format -i module/*.h module/*/*.[ch] hooks/*.[ch]

.PHONY: clean
clean:
	rm -rf build build-sanitize build-fuzz

-include $(shell find $(B) build-fuzz -path build/pkg -prune -o -name '*.d' -print 2>/dev/null)

# ---- packages ------------------------------------------------------------------------------------
# make deb: secrets-encrypt_$(VERSION)_<arch>.deb (+ libsecrets-encrypt0, -dev) in build/pkg/deb/,
# built by dpkg-buildpackage from a copy of the sources, then checked by lintian.
# make rpm: the same from packaging/rpm/secrets-encrypt.spec with rpmbuild -bb, in build/pkg/rpm/.
PKG_SOURCES := Makefile README.md module hooks units man completions packaging debian
PKG_DIR := build/pkg
.PHONY: deb rpm dist
dist:
	$(Q)rm -rf $(PKG_DIR)/dist && mkdir -p $(PKG_DIR)/dist/secrets-encrypt-$(VERSION)
	$(Q)tar -cf - $(PKG_SOURCES) | tar -xf - -C $(PKG_DIR)/dist/secrets-encrypt-$(VERSION)
	$(Q)tar -C $(PKG_DIR)/dist -czf $(PKG_DIR)/secrets-encrypt-$(VERSION).tar.gz secrets-encrypt-$(VERSION)
deb: dist
	$(Q)rm -rf $(PKG_DIR)/deb && mkdir -p $(PKG_DIR)/deb
	$(Q)cp -a $(PKG_DIR)/dist/secrets-encrypt-$(VERSION) $(PKG_DIR)/deb/
	$(Q)cd $(PKG_DIR)/deb/secrets-encrypt-$(VERSION) && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	$(Q)lintian --fail-on error,warning --info $(PKG_DIR)/deb/secrets-encrypt_$(VERSION)_*.changes
	$(Q)ls $(PKG_DIR)/deb/*.deb
rpm: dist
	$(Q)rm -rf $(PKG_DIR)/rpm && mkdir -p $(PKG_DIR)/rpm/SOURCES
	$(Q)cp $(PKG_DIR)/secrets-encrypt-$(VERSION).tar.gz $(PKG_DIR)/rpm/SOURCES/
	$(Q)rpmbuild -bb --define "_topdir $(abspath $(PKG_DIR)/rpm)" --define "se_version $(VERSION)" --nodeps \
		packaging/rpm/secrets-encrypt.spec >$(PKG_DIR)/rpm/build.log 2>&1 || { tail -n 40 $(PKG_DIR)/rpm/build.log; exit 1; }
	$(Q)ls $(PKG_DIR)/rpm/RPMS/*/*.rpm
