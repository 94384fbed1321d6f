# bench-tls: the TLS relay pair against a stunnel4 pair (same ECDSA certificates, TLS 1.3,
# mutual auth), interleaved and pinned (issue 13 "Figures"): iperf3 both ways, connect latency,
# short connections, CPU per GB and per connection. The load runs on CPU 0, the pairs on CPU 1.
# Short by default; the reference method: make bench-tls BENCH_TLS_REPS=5 BENCH_TLS_SECONDS=10
.PHONY: bench-tls
BENCH_TLS_REPS ?= 3
BENCH_TLS_SECONDS ?= 4
BENCH_TLS_CONNECTS ?= 300
bench-tls: deps
	taskset -c 0 $(BUN) bench/tls-relay.ts $(BENCH_TLS_REPS) $(BENCH_TLS_SECONDS) $(BENCH_TLS_CONNECTS)
