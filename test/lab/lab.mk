# The kernel lab (test/lab/README.md): QEMU/TCG guests on Debian's kernel prove the ESP paths.
#   make lab                          every scenario in test/lab/scenarios/
#   make lab SCENARIO="tunnel-hub"    only these
#   make lab-repeat N=3               every scenario (or SCENARIO=…), N times in a row, with each
#                                     scenario's pass count; fails if any run of any scenario did
# `make test` runs `lab` through lab-if-present. Scenarios that exercise the daemon use
# dist/dnsseal when it exists; they SKIP with the reason when it does not (a failure in CI).
.PHONY: lab lab-list lab-repeat
N ?= 3
lab: | deps
	test/lab/run.sh $(SCENARIO)

lab-repeat: | deps
	test/lab/run.sh --repeat $(N) $(SCENARIO)

lab-list:
	@test/lab/run.sh --list
