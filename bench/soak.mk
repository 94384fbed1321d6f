# bench-soak: the daemon's RSS over time under sustained load (issue 12): 8k qps over 100k names,
# TTL 1, one in five protected; prints RSS, qps, CPU per answer and live entries every 5 s, then
# RSS min/median/max after warm-up and the peak. Short by default; the issue's figure:
# make bench-soak BENCH_SOAK_SECONDS=150   (BENCH_SOAK_RULES=200000 for the 200k-rule figure)
# BENCH_SOAK_DAEMON=path runs another build (A/B); a run the daemon did not keep up with says NOT VALID.
.PHONY: bench-soak
BENCH_SOAK_SECONDS ?= 30
bench-soak: deps
	BENCH_SOAK_SECONDS=$(BENCH_SOAK_SECONDS) $(BUN) bench/soak.ts
