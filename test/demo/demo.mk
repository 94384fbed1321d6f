# The operator demo (test/demo/demo.sh): gateway mode in three network namespaces on this
# machine — both names resolving, `dnsseal list`, counters, the leak guard dropping clear
# packets to the protected address (no ESP here), the unprotected name in clear. Root only;
# removes everything it made on exit, failure or Ctrl-C. DEMO_FLAGS=--yes: no pauses.
.PHONY: demo
demo: build
	test/demo/demo.sh $(DEMO_FLAGS)
