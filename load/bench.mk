# make bench: the benchmark scenarios (issue 19; being rebuilt).
.PHONY: bench
bench: deps
	$(MAKE) --no-print-directory all
	load/bench-unary.sh
