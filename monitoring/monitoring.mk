# Monitoring: the Grafana dashboard and the Prometheus alert rules (monitoring/README.md).
# promtool checks and unit-tests the rules (test/monitoring/monitoring.test.ts). It comes from
# Debian's `prometheus` package, which would also install and start a Prometheus server: only
# its promtool is taken out of the downloaded package (no daemon on the test machine).
PROMTOOL := build/tools/promtool

.PHONY: promtool check-monitoring
promtool: $(PROMTOOL)
$(PROMTOOL):
	@mkdir -p build/tools/.prometheus-deb
	cd build/tools/.prometheus-deb && rm -f prometheus_*.deb && \
	  { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; }
	dpkg-deb --fsys-tarfile build/tools/.prometheus-deb/prometheus_*.deb | tar -xO ./usr/bin/promtool > $@.tmp
	chmod 755 $@.tmp && mv $@.tmp $@
	rm -rf build/tools/.prometheus-deb
	@$@ --version | head -1

# `make test` needs it (the recipe of `test` is in the Makefile; this adds a prerequisite).
test: $(PROMTOOL)

## check-monitoring: promtool check + unit tests of the alert rules
check-monitoring: $(PROMTOOL)
	$(PROMTOOL) check rules monitoring/prometheus/dnsseal-alerts.yaml
	cd monitoring/prometheus && $(CURDIR)/$(PROMTOOL) test rules dnsseal-alerts.test.yaml
