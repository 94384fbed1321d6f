# Libreswan for the lab's interop scenarios (libreswan-hub, libreswan-peer), never installed:
# Debian's `libreswan` conflicts with strongswan-libcharon and strongswan-starter, so installing
# it would remove the strongSwan dnsseal needs. The package file is downloaded (apt-get download:
# the candidate of this machine's apt sources) and unpacked with dpkg -x into build/libreswan/root;
# the lab guest runs its pluto, addconn and whack from there (test/lab/lib/libreswan.sh). Its
# library dependencies are in the Makefile's APT_LAB. Cached: done once per clone.
#   make libreswan
.PHONY: libreswan
LIBRESWAN_STAMP := build/libreswan/.unpacked
libreswan: $(LIBRESWAN_STAMP)
$(LIBRESWAN_STAMP): test/lab/libreswan.mk | deps-apt
	rm -rf build/libreswan && mkdir -p build/libreswan/deb
	cd build/libreswan/deb && { apt-get download -q -o APT::Sandbox::User=root libreswan || \
	  { apt-get update -qq && apt-get download -q -o APT::Sandbox::User=root libreswan; }; }
	dpkg -x build/libreswan/deb/libreswan_*.deb build/libreswan/root
	test -x build/libreswan/root/usr/libexec/ipsec/pluto
	dpkg-deb -f build/libreswan/deb/libreswan_*.deb Version >$@
lab lab-repeat: | $(LIBRESWAN_STAMP)
