# bench-protected: the protected path (issue 12): one gateway-mode daemon per target on veth in
# namespaces, eBPF data path, cache off, 20k names; unprotected and protected passes alternated,
# prints qps, the ratio protected/unprotected, CPU per answer and the registration latency.
# Short by default; longer: make bench-protected BENCH_PROT_REPS=5 BENCH_PROT_SECONDS=10
# BENCH_PROT_DATAPATH=none (or ebpf,none) for the comparison; BENCH_PROT_DAEMON_B=path for A/B.
.PHONY: bench-protected
BENCH_PROT_REPS ?= 3
BENCH_PROT_SECONDS ?= 5
bench-protected: build
	BENCH_PROT_REPS=$(BENCH_PROT_REPS) BENCH_PROT_SECONDS=$(BENCH_PROT_SECONDS) $(BUN) bench/protected.ts
