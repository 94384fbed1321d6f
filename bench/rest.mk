# bench-rest: the daemon's RSS at rest with 10k live registry entries and the default answer
# cache full (issue 12), split into anonymous memory and the executable's file pages, beside the
# heap bytes one registry entry costs. BENCH_REST_DAEMON=path runs another build (A/B). Prints figures.
.PHONY: bench-rest
bench-rest: deps
	$(BUN) bench/rest.ts
