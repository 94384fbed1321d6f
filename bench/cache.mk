# bench-cache: the answer cache at its default size: heap bytes per entry, ns per hit / miss /
# insert / evicting insert, a hit through the pipeline against an upstream answer, SIEVE vs LRU
# hit ratio (issue 12). Prints figures.
.PHONY: bench-cache
bench-cache: deps
	$(BUN) bench/cache.ts
