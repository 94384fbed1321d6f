# bench-list: CPU, output size and heap of `dnsseal list` formatting (20,000 names on one
# address; 50,000 rows), table and JSON. Prints figures.
.PHONY: bench-list
bench-list: deps
	$(BUN) bench/list-format.ts
