# Small servers for the scenarios.
#
#   http_serve HOST TEXT   busybox httpd on port 80 (IPv4 and IPv6) serving TEXT at /
#   udp_send HOST ADDR PORT TEXT   one UDP datagram (bash's /dev/udp), no listener needed

http_serve() {
	local host=$1 text=$2 root=$LAB_TMP/www-$1
	mkdir -p "$root"
	echo "$text" >"$root/index.html"
	lab_bg on "$host" httpd -f -p 80 -h "$root"
	wait_until 10 "httpd in $host" sh -c "ip netns exec $host ss -Htln | grep -q ':80 '"
}

udp_send() {
	on "$1" bash -c "echo '$4' >/dev/udp/$2/$3"
}
