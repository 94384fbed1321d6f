# The kernel lab (test/lab/README.md): QEMU/TCG guests on Debian's kernel prove the ESP paths.
#   make lab                          every scenario in test/lab/scenarios/
#   make lab SCENARIO="tunnel-hub"    only these
# `make test` runs it through lab-if-present. Scenarios that exercise the daemon use
# dist/dnsseal when it exists; they SKIP with the reason when it does not.
.PHONY: lab lab-list
lab: | deps
	test/lab/run.sh $(SCENARIO)

lab-list:
	@test/lab/run.sh --list
