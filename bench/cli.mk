# bench-list: CPU, output size and heap of `dnsseal list` formatting (20,000 names on one
# address; 50,000 rows), table and JSON. Prints figures.
.PHONY: bench-list
bench-list: deps
	$(BUN) bench/list-format.ts

# bench-check: what the one-pass check (and its warnings: shadowed rules) adds to loading
# 1,000,000 rules. Prints figures.
.PHONY: bench-check
bench-check: deps
	$(BUN) bench/check.ts
