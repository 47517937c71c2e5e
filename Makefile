# infergate - plain GNU make.
#
#   make deps              install missing Debian packages (no-op when present)
#                          and the JS SDK of the tests into tests/js/node_modules
#   make / make all        build bin/infergate
#   make test              deps, build, unit tests (cmocka), integration tests
#   make test SANITIZE=1   the same with ASan + UBSan (libc malloc)
#   make run               start the gateway on conf/infergate.conf
#   make bench             issue 19's scenarios S1-S6 (load/bench.mk; QUICK=1: briefly)
#   make bench-deps        what make bench needs beyond make deps (nginx, gnuplot, npm)
#   make clean

SANITIZE ?= 0
V ?= 0

ifeq ($(SANITIZE),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
MALLOC_LIBS :=
BIN := $(BUILD)/infergate
else
BUILD := build/rel
SANFLAGS :=
MALLOC_LIBS := -ljemalloc
BIN := bin/infergate
endif

CC ?= cc
CFLAGS ?= -O2 -g
STD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wundef -Wformat=2 -Wwrite-strings -Wvla -Wpointer-arith \
	-Wimplicit-fallthrough
PKGS := libevent libevent_openssl libevent_pthreads libnghttp2 openssl jansson inih libcurl \
	hiredis libarchive libprotobuf-c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(STD) $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LDLIBS = $(PKG_LIBS) -lhttp_parser -lxgboost $(MALLOC_LIBS) -lm -lpthread

# src/admin: the control plane (SageMaker JSON 1.1 API, Redis job store,
# deployments); part of the library like src/*.c.
LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard src/admin/*.c)
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
# proto/*.proto: compiled by protoc-c into $(BUILD)/gen/proto/<name>.pb-c.[ch]
# (included as "proto/<name>.pb-c.h"), the .c part of the library.
PROTO_SRC := $(wildcard proto/*.proto)
PROTO_GEN_H := $(PROTO_SRC:%.proto=$(BUILD)/gen/%.pb-c.h)
LIB_OBJ += $(PROTO_SRC:%.proto=$(BUILD)/obj/gen/%.pb-c.o)
MAIN_OBJ := $(BUILD)/obj/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# load/fake-container: a SageMaker model container for tests and benchmarks,
# beside the gateway's binary (bin/fake-container, build/san/fake-container).
FAKE_OBJ := $(patsubst load/fake-container/%.c,$(BUILD)/obj/fake-container/%.o,$(wildcard load/fake-container/*.c))
FAKE := $(dir $(BIN))fake-container
# src/cli: bin/infergate-cli, the streaming transform client (nghttp2 on
# libevent), beside the gateway's binary.
CLI_OBJ := $(patsubst src/cli/%.c,$(BUILD)/obj/cli/%.o,$(wildcard src/cli/*.c))
CLI := $(if $(CLI_OBJ),$(dir $(BIN))infergate-cli)

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian packages: build dependencies, then the real clients and servers
# the integration tests and benchmarks drive.
DEB_PKGS := build-essential pkg-config libevent-dev libnghttp2-dev libssl-dev \
	libjansson-dev libinih-dev libhttp-parser-dev libjemalloc-dev libcmocka-dev \
	libprotobuf-c-dev protobuf-c-compiler libhiredis-dev libcurl4-openssl-dev \
	libarchive-dev liblapacke-dev libxgboost-dev protobuf-compiler python3-protobuf \
	nghttp2-client nghttp2-server curl awscli python3 python3-boto3 python3-h2 python3-httpx \
	redis-server openssl valgrind clang libclang-rt-dev
# Node.js and npm come with the machine image: never list nodejs or npm here
# (Debian's npm conflicts with that build).

# apt-get waits up to this long for the dpkg lock another apt run holds (a
# fresh machine may still be running one); apt-get update does not honour
# that option for its lists lock, so deps retries it for as long.
APT_LOCK_WAIT := 600
APT_GET := apt-get -q -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT)

# The AWS SDK for JavaScript v3 the integration tests drive
# (tests/integration/test_js_sdk.py), installed from the committed lock file.
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.package-lock.json
# The offline lint of the image and the manifests (make k8s-lint,
# tests/lint/k8s_lint.mjs): kubernetes-models and dockerfile-utils, from the
# committed lock file; kubectl (its built-in kustomize) comes with the
# machine image.
LINT_DIR := tests/lint
LINT_STAMP := $(LINT_DIR)/node_modules/.package-lock.json

.PHONY: all deps deps-deb test test-unit test-integ test-fuzz run clean

all: $(BIN) $(FAKE) $(CLI) $(dir $(BIN))bench-codecs

$(BUILD)/obj/%.o: src/%.c $(BUILD)/.build_opts $(BUILD)/gen/infergate/build.h
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The generated headers exist before any library source is compiled (the
# .d files take over from the second build on).
$(LIB_OBJ): | $(PROTO_GEN_H)

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(if $(filter 0,$(V)),@echo "  PROTOC  $<")
	$(Q)protoc-c --proto_path=. --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(BUILD)/.build_opts
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libinfergate.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)
ifeq ($(SANITIZE),1)
	@mkdir -p bin && cp $@ bin/infergate-san
endif

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libinfergate.a $(LDLIBS) -lcmocka

$(BUILD)/obj/fake-container/%.o: load/fake-container/%.c $(BUILD)/.build_opts $(BUILD)/gen/infergate/build.h
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(FAKE): $(FAKE_OBJ) $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

-include $(FAKE_OBJ:.o=.d)

$(BUILD)/obj/cli/%.o: src/cli/%.c $(BUILD)/.build_opts $(BUILD)/gen/infergate/build.h
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(dir $(BIN))infergate-cli: $(CLI_OBJ) $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

-include $(CLI_OBJ:.o=.d)

# load/bench-codecs.c: throughput of the codecs and the format conversion
# (issue 18's benchmark), linked as the unit tests are; beside the
# gateway's binary (bin/bench-codecs; under SANITIZE=1 that is
# build/san/bench-codecs itself). make bench-codecs runs it.
BENCH_CODECS := $(dir $(BIN))bench-codecs

$(BUILD)/bench-codecs: load/bench-codecs.c $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libinfergate.a $(LDLIBS)

ifneq ($(BENCH_CODECS),$(BUILD)/bench-codecs)
$(BENCH_CODECS): $(BUILD)/bench-codecs
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
endif

.PHONY: bench-codecs
bench-codecs: $(BENCH_CODECS)
	$(BENCH_CODECS)

-include $(BUILD)/bench-codecs.d

# The build's name (git describe; "unknown" outside a git checkout), seen in
# --version and infergate_build_info. Rewritten only when it changes, so only
# the files that include it are rebuilt.
$(BUILD)/gen/infergate/build.h: FORCE
	@mkdir -p $(dir $@)
	@b=$$(git describe --always --dirty 2>/dev/null || echo unknown); \
	printf '#define IG_BUILD "%s"\n' "$$b" | cmp -s - $@ || printf '#define IG_BUILD "%s"\n' "$$b" > $@

# Rebuild everything when the flags change.
$(BUILD)/.build_opts: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(LDLIBS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(LDLIBS)' > $@
FORCE:

deps: deps-deb $(JS_STAMP) $(LINT_STAMP)

deps-deb:
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		end=$$(( $$(date +%s) + $(APT_LOCK_WAIT) )); \
		until err=$$($$SUDO $(APT_GET) update 2>&1 >/dev/null); do \
			if ! printf '%s\n' "$$err" | grep -q 'Could not get lock' || \
					[ "$$(date +%s)" -ge "$$end" ]; then \
				printf '%s\n' "$$err" >&2; exit 1; \
			fi; \
			echo "make deps: waiting for another apt run to release its lock"; sleep 5; \
		done; \
		DEBIAN_FRONTEND=noninteractive $$SUDO $(APT_GET) install -y --no-install-recommends $$missing; \
	fi

# npm ci only when node_modules is missing or the lock file changed.
$(JS_STAMP): $(JS_DIR)/package-lock.json $(JS_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "make deps: npm not found; Node.js and npm" \
		"come with the machine image (do not apt-get install npm)" >&2; exit 1; }
	@echo "make deps: npm ci in $(JS_DIR)"
	$(Q)cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

$(LINT_STAMP): $(LINT_DIR)/package-lock.json $(LINT_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "make deps: npm not found; Node.js and npm" \
		"come with the machine image (do not apt-get install npm)" >&2; exit 1; }
	@echo "make deps: npm ci in $(LINT_DIR)"
	$(Q)cd $(LINT_DIR) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

# Builds run on every core; the fuzzing step (issue 18: the codec and
# RecordIO decoders, FUZZ_TEST_SECONDS each, side by side) runs in the
# release pass only (the fuzz build is sanitized already), and so does the
# manifests' lint (no C in it).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_TEST_SECONDS ?= 60

test: deps
	$(MAKE) --no-print-directory -j$(JOBS) all SANITIZE=$(SANITIZE)
	$(MAKE) --no-print-directory test-unit SANITIZE=$(SANITIZE)
	$(if $(filter 1,$(SANITIZE)),,$(MAKE) --no-print-directory test-fuzz)
	$(if $(filter 1,$(SANITIZE)),,$(MAKE) --no-print-directory k8s-lint)
	$(MAKE) --no-print-directory test-integ SANITIZE=$(SANITIZE)

test-fuzz:
	$(MAKE) --no-print-directory -j$(JOBS) fuzz-build FUZZ_TARGETS="codec recordio"
	@mkdir -p $(FUZZ_BUILD); \
	$(MAKE) --no-print-directory fuzz FUZZ_TARGETS=codec FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) \
		> $(FUZZ_BUILD)/test-fuzz-codec.log 2>&1 & pid=$$!; \
	$(MAKE) --no-print-directory fuzz FUZZ_TARGETS=recordio FUZZ_SECONDS=$(FUZZ_TEST_SECONDS); \
	rr=$$?; wait $$pid; rc=$$?; cat $(FUZZ_BUILD)/test-fuzz-codec.log; \
	echo "test-fuzz: fuzz_codec exit $$rc, fuzz_recordio exit $$rr"; \
	[ $$rc -eq 0 ] && [ $$rr -eq 0 ]

test-unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

test-integ: $(BIN)
	INFERGATE_BIN=$(BIN) tests/integration/run.sh

# docker/Dockerfile, docker/model/Dockerfile and every manifest of docker/k8s
# (each overlay as kubectl kustomize renders it, and the raw files) checked
# offline: the schemas, and what they cannot (tests/lint/README.md). The
# self-test first plants broken manifests and Dockerfiles in a temporary
# tree: each must be reported.
.PHONY: k8s-lint
k8s-lint: $(LINT_STAMP)
	node $(LINT_DIR)/k8s_lint.mjs --self-test
	node $(LINT_DIR)/k8s_lint.mjs

run: deps
	$(MAKE) --no-print-directory all
	./bin/infergate --config conf/infergate.conf

clean:
	rm -rf build bin

# A variable's value, for the load/ scripts that build C programs against
# the library as the Makefile does: make -s print-LDLIBS
print-%:
	@echo '$($*)'

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

# ------------------------------------------------------------------
# Fuzzing: the libFuzzer targets of tests/fuzz/ (see tests/fuzz/README.md),
# built with clang, ASan and UBSan into build/fuzz/, each run for
# FUZZ_SECONDS on build/fuzz/corpus-<target> (the seeds of
# tests/fuzz/corpus/<target>/ copied in; what the fuzzer adds stays there).
# Any crash, leak, sanitizer report or timeout fails the target; its input
# is saved in build/fuzz/artifacts-<target>/.
#   make fuzz                                 every target, FUZZ_SECONDS each
#   make fuzz FUZZ_TARGETS="codec http" FUZZ_SECONDS=300 FUZZ_ARGS=-max_len=8192
#   make fuzz-build                           only build
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= codec number model config http recordio convert auth jpath
FUZZ_ARGS ?=
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(STD) $(WARN) -O1 -g $(FUZZ_SAN) -Iinclude $(PKG_CFLAGS) -MMD -MP
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/obj/%.o)
# The protoc-c sources of proto/ too (see PROTO_SRC), generated here.
FUZZ_LIB_OBJ += $(PROTO_SRC:%.proto=$(FUZZ_BUILD)/obj/gen/%.pb-c.o)
$(FUZZ_LIB_OBJ): FUZZ_CFLAGS += -I$(FUZZ_BUILD)/gen
$(FUZZ_LIB_OBJ): | $(PROTO_SRC:%.proto=$(FUZZ_BUILD)/gen/%.pb-c.h)

$(FUZZ_BUILD)/gen/proto/%.pb-c.c $(FUZZ_BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	$(Q)protoc-c --proto_path=. --c_out=$(FUZZ_BUILD)/gen $<

$(FUZZ_BUILD)/obj/gen/%.pb-c.o: $(FUZZ_BUILD)/gen/%.pb-c.c $(FUZZ_BUILD)/.build_opts | fuzz-check-cc
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-check-cc

fuzz-check-cc:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
		echo "make fuzz: $(FUZZ_CC) not found; libFuzzer needs clang:" \
			"sudo apt-get install clang libclang-rt-dev (make deps does)" >&2; exit 1; }

$(FUZZ_BUILD)/obj/%.o: src/%.c $(FUZZ_BUILD)/.build_opts | fuzz-check-cc
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libinfergate.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libinfergate.a | fuzz-check-cc
	$(if $(filter 0,$(V)),@echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< \
		$(FUZZ_BUILD)/libinfergate.a $(PKG_LIBS) -lhttp_parser -lxgboost -lm -lpthread

$(FUZZ_BUILD)/.build_opts: FORCE
	@mkdir -p $(FUZZ_BUILD)
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $@

fuzz-build: fuzz-check-cc $(FUZZ_BINS)

fuzz: fuzz-build
	@fail=0; for t in $(FUZZ_TARGETS); do \
		c=$(FUZZ_BUILD)/corpus-$$t; a=$(FUZZ_BUILD)/artifacts-$$t; \
		mkdir -p $$c $$a && cp tests/fuzz/corpus/$$t/* $$c/ || exit 1; \
		dict=; [ ! -f tests/fuzz/$$t.dict ] || dict=-dict=tests/fuzz/$$t.dict; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s on $$c"; \
		$(FUZZ_BUILD)/fuzz_$$t $$dict -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
			-print_final_stats=1 -artifact_prefix=$$a/ $(FUZZ_ARGS) $$c \
			|| { echo "== fuzz_$$t: FAILED (inputs in $$a/)"; fail=1; }; \
	done; exit $$fail

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:=.d)

# ------------------------------------------------------------------
# Kubernetes: the images and a real pod (docker/, docker/k8s/, tests/k8s/).
# No cluster here: Debian's podman plays the Kubernetes YAML as real
# containers (podman kube play), from images built locally without a
# registry. Run as root; podman's defaults fail on these machines (crun,
# nofile), so every podman call goes through the containers.conf written
# below (CONTAINERS_CONF; /etc is left alone).
#   make k8s-base     localhost/debian-base:bookworm (debootstrap minbase
#                     without docs, man pages and translations, as
#                     debian:bookworm-slim; skipped when the image exists)
#   make k8s-images   localhost/infergate:test, localhost/infergate-model:test
#   make k8s-e2e      plays docker/k8s/test and checks through the pod
K8S_DEB_PKGS := podman buildah runc catatonit debootstrap curl nghttp2-client python3-h2
K8S_BUILD := build/k8s
K8S_CONF := $(K8S_BUILD)/containers.conf
K8S_PODMAN = CONTAINERS_CONF=$(abspath $(K8S_CONF)) podman
K8S_BASE_IMAGE := localhost/debian-base:bookworm
K8S_MIRROR := http://deb.debian.org/debian

.PHONY: k8s-deps k8s-base k8s-images k8s-e2e

# The same apt-get run as deps-deb (lock wait included), for podman's set.
k8s-deps:
	@$(MAKE) --no-print-directory deps-deb DEB_PKGS="$(K8S_DEB_PKGS)"

$(K8S_CONF): Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
		'[engine]' 'runtime = "runc"' > $@

k8s-base: k8s-deps $(K8S_CONF)
	@if $(K8S_PODMAN) image exists $(K8S_BASE_IMAGE); then \
		echo "make k8s-base: $(K8S_BASE_IMAGE) exists"; \
	else \
		set -e; r=$(K8S_BUILD)/rootfs; rm -rf $$r; \
		echo "make k8s-base: debootstrap bookworm into $$r"; \
		debootstrap --variant=minbase --include=curl,ca-certificates bookworm $$r $(K8S_MIRROR) \
			> $(K8S_BUILD)/debootstrap.log 2>&1 || { tail -20 $(K8S_BUILD)/debootstrap.log >&2; exit 1; }; \
		rm -rf $$r/var/cache/apt/archives/*.deb $$r/var/lib/apt/lists/* $$r/usr/share/doc/* \
			$$r/usr/share/man/* $$r/usr/share/info/* $$r/usr/share/locale/*; \
		printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
			'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
			'path-exclude /usr/share/locale/*' > $$r/etc/dpkg/dpkg.cfg.d/excludes; \
		tar -C $$r -c . | $(K8S_PODMAN) import - $(K8S_BASE_IMAGE) >/dev/null; \
		rm -rf $$r; echo "make k8s-base: imported $(K8S_BASE_IMAGE)"; \
	fi

# Both images from the source tree (multi-stage: the build stage makes
# bin/infergate and bin/fake-container; the two Dockerfiles share it word
# for word, so the second build takes it from podman's layer cache, given
# the same build name). --format
# docker: the OCI format has no HEALTHCHECK. Logs: build/k8s/build-*.log.
k8s-images: k8s-base
	@b=$$(git describe --always --dirty 2>/dev/null || echo unknown); set -e; \
	for img in infergate:docker/Dockerfile infergate-model:docker/model/Dockerfile; do \
		echo "make k8s-images: localhost/$${img%%:*}:test from $${img#*:} (build $$b)"; \
		$(K8S_PODMAN) build --pull=never --format docker --build-arg BASE=$(K8S_BASE_IMAGE) \
			--build-arg IG_BUILD=$$b -f $${img#*:} -t localhost/$${img%%:*}:test . \
			> $(K8S_BUILD)/build-$${img%%:*}.log 2>&1 \
			|| { tail -30 $(K8S_BUILD)/build-$${img%%:*}.log >&2; exit 1; }; \
	done

k8s-e2e: k8s-images
	CONTAINERS_CONF=$(abspath $(K8S_CONF)) /usr/bin/python3 tests/k8s/test_k8s_e2e.py

# load/igload (issue 19's load generator) and make bench / bench-deps (its
# scenarios against the peers) keep their rules beside their sources (the
# images copy neither: they build only the gateway and the fake container).
-include load/igload.mk
-include load/bench.mk
