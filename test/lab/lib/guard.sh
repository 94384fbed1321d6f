# dnsseal's leak guard, read from the daemon's Prometheus endpoint (sourced by the scenarios
# that need it, after lib/lab.sh; it changes nothing there).
#
#   GUARD_METRICS            the endpoint dnsseal is started with (--metrics $GUARD_METRICS)
#   guard_metrics HOST       the metrics page of HOST's daemon (curl in HOST's namespace)
#   guard_drops HOST         the sum of dnsseal_datapath_guard_drops_total over all reasons

GUARD_METRICS=${GUARD_METRICS:-127.0.0.1:9153}

guard_metrics() {
	on "$1" curl -sS -m 10 "http://$GUARD_METRICS/metrics"
}

guard_drops() {
	guard_metrics "$1" | awk '/^dnsseal_datapath_guard_drops_total[{ ]/ { s += $NF } END { print s + 0 }'
}
