# bench-reload: a 200k-rule reload of a running daemon under query load (issue 12): the longest
# answer delay during the reload and the daemon's RSS before / peak / after. Prints figures.
.PHONY: bench-reload
BENCH_RELOAD_RULES ?= 200000
bench-reload: deps
	BENCH_RELOAD_RULES=$(BENCH_RELOAD_RULES) $(BUN) bench/reload.ts

# bench-query-log: the pipeline's on-CPU ns per query with the query log absent, off and on,
# and with an access list (allow_clients). Prints figures.
.PHONY: bench-query-log
bench-query-log: deps
	$(BUN) bench/query-log.ts
