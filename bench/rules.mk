# bench-rules: 1M-rule load time, memory and ns per match (issue #2). Prints figures.
.PHONY: bench-rules
bench-rules: deps
	$(BUN) bench/rules.ts $(RULES)
