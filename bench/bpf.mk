# eBPF data path benchmark: BPF_PROG_RUN ns/packet per program, 1M-entry map insert/scan/memory,
# veth iperf3 with/without programs. Needs root. Prints figures.
.PHONY: bench-bpf
bench-bpf: $(BPF_OBJ) | deps
	$(BUN) bench/bpf.ts --iperf $(BENCH_BPF_FLAGS)
