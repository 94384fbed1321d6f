# Assertions in the style of strongSwan's testing suite (evaltest.dat), read from stdin:
#
#   HOST::COMMAND::PATTERN::EXPECT
#
# COMMAND runs in HOST's namespace (through bash -c; `swanctl` talks to HOST's charon) and
# PATTERN, an extended regular expression, is counted over its output lines. COMMAND
# `tcpdump` instead reads the captures named HOST (capture_start NAME …; tcpdump -nn -r), e.g.
# wan::tcpdump::IP 192\.0\.2\.1 > 192\.0\.2\.2: ESP::YES; those lines are
# evaluated after every other line has run and the captures have been stopped, so traffic
# commands come first in any order. EXPECT is YES (at least one line), NO (none), a count N,
# or a comparison >N >=N <N <=N. PATTERN may contain "::" (IPv6); COMMAND may not: write
# IPv6 addresses in commands uncompressed ($SRV6_X in lib/topology.sh).
# Blank lines and lines starting with # are ignored.
#
# Every line is reported in $LAB_OUT/assertions as "PASS|FAIL  LINE  [matched N]";
# the result is PASS when all hold, else FAIL naming how many did not. A COMMAND gets 120 s.
#
# Lines every protected-traffic scenario asserts, for use inside the heredoc as $(…):
#   no_clear CAPTURE           not one packet to or from 198.51.100.0/24 or 2001:db8:100::/64
#                              in clear in CAPTURE (the addresses of packets, not DNS answers)
#   esp_both CAPTURE A B N     at least N ESP packets A -> B and N B -> A (IPv4 or IPv6)

no_clear() {
	cat <<EOF
$1::tcpdump::> 198\.51\.100\.::NO
$1::tcpdump::IP 198\.51\.100\.[0-9]+(\.[0-9]+)? > ::NO
$1::tcpdump::IP6 [0-9a-f:.]+ > 2001:db8:100:::NO
$1::tcpdump::IP6 2001:db8:100:[0-9a-f:]*(\.[0-9]+)? > ::NO
EOF
}

esp_both() {
	local ip=IP a=${2//./\\.} b=${3//./\\.}
	case $2 in *:*) ip=IP6 ;; esac
	echo "$1::tcpdump::$ip $a > $b: ESP\(::>=$4"
	echo "$1::tcpdump::$ip $b > $a: ESP\(::>=$4"
}

_eval_count_ok() {
	local n=$1 expect=$2
	case "$expect" in
	YES) [ "$n" -ge 1 ] ;;
	NO) [ "$n" -eq 0 ] ;;
	'>='*) [ "$n" -ge "${expect#>=}" ] ;;
	'<='*) [ "$n" -le "${expect#<=}" ] ;;
	'>'*) [ "$n" -gt "${expect#>}" ] ;;
	'<'*) [ "$n" -lt "${expect#<}" ] ;;
	[0-9]*) [ "$n" -eq "$expect" ] ;;
	*) return 2 ;;
	esac
}

LAB_EVAL_TOTAL=0
LAB_EVAL_FAILED=0
LAB_EVAL_SEQ=0

# _eval_one LINE OUTPUT_FILE — count, compare, report.
_eval_one() {
	local line=$1 outf=$2 host cmd pattern expect rest n rc
	host=${line%%::*}
	rest=${line#*::}
	cmd=${rest%%::*}
	rest=${rest#*::}
	expect=${rest##*::}
	pattern=${rest%::*}
	n=$(grep -cE -e "$pattern" "$outf")
	_eval_count_ok "$n" "$expect"
	rc=$?
	LAB_EVAL_TOTAL=$((LAB_EVAL_TOTAL + 1))
	local verdict=PASS
	if [ $rc -ne 0 ]; then
		verdict=FAIL
		LAB_EVAL_FAILED=$((LAB_EVAL_FAILED + 1))
		[ $rc -eq 2 ] && n="$n; bad EXPECT '$expect'"
	fi
	# Twice rather than through tee: one process less per line (they are slow under TCG).
	printf '%s  %s  [matched %s]\n' "$verdict" "$line" "$n"
	printf '%s  %s  [matched %s]\n' "$verdict" "$line" "$n" >>"$LAB_OUT/assertions"
	if [ $rc -ne 0 ]; then
		echo "---- output of '$cmd' on $host (first 40 lines):"
		head -n 40 "$outf"
		echo "----"
	fi
}

# _eval_tcpdump_text HOST — the decoded captures of HOST, cached as $LAB_OUT/HOST.tcpdump.txt.
_eval_tcpdump_text() {
	local host=$1 txt=$LAB_OUT/$1.tcpdump.txt f
	if [ ! -f "$txt" ]; then
		: >"$txt"
		for f in $(capture_files "$host"); do
			tcpdump -nn -r "$f" >>"$txt" 2>/dev/null
		done
	fi
	echo "$txt"
}

# evaltest [--continue] — evaluate stdin's lines. Without --continue, write the result and
# exit (the end of a scenario); with it, return so the scenario can go on (the counts
# LAB_EVAL_TOTAL / LAB_EVAL_FAILED carry over; captures are stopped only if a tcpdump line
# needed them).
evaltest() {
	local line host rest cmd outf continue=
	local -a deferred=()
	[ "${1:-}" = --continue ] && continue=1
	mkdir -p "$LAB_OUT/eval"
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		host=${line%%::*}
		rest=${line#*::}
		cmd=${rest%%::*}
		if [ "$cmd" = tcpdump ]; then
			deferred+=("$line")
			continue
		fi
		LAB_EVAL_SEQ=$((LAB_EVAL_SEQ + 1))
		outf=$LAB_OUT/eval/$(printf %02d $LAB_EVAL_SEQ)-$host.out
		lab_log "eval: $host: $cmd"
		on "$host" timeout 120 bash -c "$cmd" >"$outf" 2>&1
		_eval_one "$line" "$outf"
	done
	if [ ${#deferred[@]} -gt 0 ] || [ -z "$continue" ]; then
		capture_stop
	fi
	for line in "${deferred[@]}"; do
		host=${line%%::*}
		_eval_one "$line" "$(_eval_tcpdump_text "$host")"
	done
	[ -n "$continue" ] && return 0
	lab_finish
}

# lab_finish — write the result from the assertions and exit.
lab_finish() {
	if [ "$LAB_EVAL_TOTAL" -eq 0 ]; then
		lab_fail "no assertions were evaluated"
	elif [ "$LAB_EVAL_FAILED" -gt 0 ]; then
		lab_fail "$LAB_EVAL_FAILED of $LAB_EVAL_TOTAL assertions failed"
	fi
	lab_log "PASS: $LAB_EVAL_TOTAL assertions hold"
	echo "PASS $LAB_EVAL_TOTAL assertions" >"$LAB_OUT/result"
	exit 0
}
