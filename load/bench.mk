# make bench / make bench-deps: issue 19's benchmark scenarios (load/bench/,
# load/README.md). Included by the top Makefile.
#
#   make bench-deps     nginx and gnuplot (Debian), npm ci in load/peers/node-dataloader
#   make bench          S1-S6, every system side by side: load/results/*.json, REPORT.md
#   make bench QUICK=1  every scenario briefly (< 3 min): checks only that each ran
#                       and its results parse
#   make bench S=S2,S4  only those scenarios (BENCH_ARGS: more load/bench/bench.py options)

BENCH_DEB_PKGS := nginx gnuplot-nox nghttp2-client nghttp2-server curl
BENCH_JS_DIR := load/peers/node-dataloader
BENCH_JS_STAMP := $(BENCH_JS_DIR)/node_modules/.package-lock.json
# QUICK=1 writes to build/bench-quick: load/results keeps the last full run.
BENCH_OUT ?= $(if $(filter 1,$(QUICK)),build/bench-quick,load/results)

.PHONY: bench bench-deps
bench-deps: $(BENCH_JS_STAMP)
	@$(MAKE) --no-print-directory deps-deb DEB_PKGS="$(BENCH_DEB_PKGS)"

$(BENCH_JS_STAMP): $(BENCH_JS_DIR)/package-lock.json $(BENCH_JS_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "make bench-deps: npm not found; Node.js and npm" \
		"come with the machine image (do not apt-get install npm)" >&2; exit 1; }
	@echo "make bench-deps: npm ci in $(BENCH_JS_DIR)"
	$(Q)cd $(BENCH_JS_DIR) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

bench: deps bench-deps
	$(MAKE) --no-print-directory all
	/usr/bin/python3 load/bench/bench.py --out $(BENCH_OUT) $(if $(filter 1,$(QUICK)),--quick) \
		$(if $(S),--scenarios $(S)) $(BENCH_ARGS)
