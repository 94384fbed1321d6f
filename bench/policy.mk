# bench-policy: ns per Policy.decide() call by client classification (no clients, a few client
# CIDRs over IPv4/IPv6/v4-mapped, spoofed sources). Prints figures.
.PHONY: bench-policy
bench-policy: deps
	$(BUN) bench/policy-decide.ts
