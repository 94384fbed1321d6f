# bench-dns: dnsperf against knot, dnsmasq (cache off), unbound (cache minimal) and dnsseal
# (--datapath none), interleaved and pinned; prints qps, latency and ratios (issue #2).
# Short by default; the reference method: make bench-dns BENCH_DNS_REPS=5 BENCH_DNS_SECONDS=10
# Cached targets and floors: BENCH_DNS_TARGETS=dnsmasq,dnsseal,dnsmasq-cache,dnsseal-cache,echo-cache
# (echo-cache: Bun's UDP floor, every query answered with no DNS work; toy: a minimal Bun forwarder).
.PHONY: bench-dns bench-dns-fuzz
BENCH_DNS_REPS ?= 3
BENCH_DNS_SECONDS ?= 5
# BENCH_DNSSEAL_CMD (see bench/dns-bench.ts) benches another dnsseal command, e.g. a build of
# a branch at its own path; dist/dnsseal is then neither built nor used.
# A/B in one run: BENCH_DNSSEAL_B=/path/to/other/dnsseal with the targets dnsseal-b and
# dnsseal-cache-b beside dnsseal and dnsseal-cache (CPU-normalised ratios printed).
# Latency: BENCH_DNS_LAT_REPS rounds (default BENCH_DNS_REPS); BENCH_DNS_REPS=0 measures only it.
bench-dns: $(if $(BENCH_DNSSEAL_CMD),deps,build)
	BENCH_DNS_REPS=$(BENCH_DNS_REPS) BENCH_DNS_SECONDS=$(BENCH_DNS_SECONDS) $(BUN) bench/dns-bench.ts

# The longer fuzz target for the DNS codecs (the CI property test runs 100k; this runs FUZZ_N).
FUZZ_N ?= 2000000
bench-dns-fuzz: deps
	$(BUN) bench/dns-fuzz.ts $(FUZZ_N)
