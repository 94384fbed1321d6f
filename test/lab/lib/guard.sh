# dnsseal's Prometheus endpoint and its leak guard's counters (sourced by the scenarios that
# start the daemon with --metrics $GUARD_METRICS, after lib/lab.sh; it changes nothing there).
#
#   GUARD_METRICS                  the endpoint dnsseal is started with (--metrics $GUARD_METRICS)
#   guard_metrics HOST             the metrics page of HOST's daemon (curl in HOST's namespace)
#   metric_sum FILE REGEX          the sum of the samples on the lines of a saved page matching
#                                  ^REGEX (e.g. 'dnsseal_datapath_guard_drops_total[{ ]')
#   guard_drops HOST [REASON]      dnsseal_datapath_guard_drops_total, over all reasons or one
#   guard_drops_reach HOST N [REASON]
#                                  true once guard_drops is N or more (for poll_until)
#   metric REGEX                   (a command in $LAB_TMP/bin, for evaltest lines run in the
#                                  daemon's host) metric_sum over the page fetched now

GUARD_METRICS=${GUARD_METRICS:-127.0.0.1:9153}

guard_metrics() {
	on "$1" curl -sS -m 30 "http://$GUARD_METRICS/metrics"
}

metric_sum() {
	awk -v re="^$2" '$0 ~ re { s += $NF } END { print s + 0 }' "$1"
}

guard_drops() {
	local re='dnsseal_datapath_guard_drops_total[{ ]'
	[ -z "${2:-}" ] || re="dnsseal_datapath_guard_drops_total[{]reason=\"$2\"[}]"
	guard_metrics "$1" | metric_sum /dev/stdin "$re"
}

guard_drops_reach() { [ "$(guard_drops "$1" "${3:-}")" -ge "$2" ]; }

cat >"$LAB_TMP/bin/metric" <<SCRIPT
#!/bin/sh
curl -sS -m 30 http://$GUARD_METRICS/metrics | awk -v re="^\$1" '\$0 ~ re { s += \$NF } END { print s + 0 }'
SCRIPT
chmod +x "$LAB_TMP/bin/metric"
