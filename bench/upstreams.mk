# bench-upstreams: plain UDP, TCP, DNS over TLS and DNS over HTTPS against one unbound on
# loopback (unbound on CPU 0, the client on CPU 1): latency, first-query cost, qps over one
# pipelined DoT connection, client CPU per query (bench/upstream-bench.ts).
.PHONY: bench-upstreams
BENCH_UP_REPS ?= 3
BENCH_UP_SECONDS ?= 3
bench-upstreams: deps
	BENCH_UP_REPS=$(BENCH_UP_REPS) BENCH_UP_SECONDS=$(BENCH_UP_SECONDS) taskset -c 1 $(BUN) bench/upstream-bench.ts
