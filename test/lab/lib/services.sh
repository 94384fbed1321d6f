# Small servers for the scenarios.
#
#   http_serve HOST TEXT       busybox httpd on port 80 (IPv4 and IPv6) serving TEXT at /
#   listening HOST PROTO PORT  true when something in HOST listens on PROTO (tcp|udp) PORT

listening() {
	local flag=-Htln
	[ "$2" = udp ] && flag=-Huln
	nsenter --net="/run/netns/$1" ss "$flag" "sport = :$3" | grep -q .
}

http_serve() {
	local host=$1 text=$2 root=$LAB_TMP/www-$1
	mkdir -p "$root"
	echo "$text" >"$root/index.html"
	ip netns exec "$host" "$LAB_TMP/bin/httpd" -f -p 80 -h "$root" &
	LAB_PIDS+=($!)
	wait_until 60 "httpd in $host to listen on tcp/80" listening "$host" tcp 80
	lab_log "httpd: $host serving \"$text\""
}
