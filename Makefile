# dnsseal — build, test, run. Every install step lives here (CI runs on a clean clone).
#   make run    install what is missing, build, start the proxy on the embedded default config
#   make test   install what is missing, build, run every test (unit, netns, eBPF, kernel lab)
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUN      := node_modules/.bin/bun
DIST     := dist/dnsseal
BPF_OBJ  := build/dnsseal.bpf.o
ICPT_OBJ := build/intercept.bpf.o
CLANG    ?= clang
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

# Debian packages for building and for the tests (netns, eBPF, DNS peers, the kernel lab).
APT_BUILD := clang llvm libbpf-dev bpftool linux-libc-dev gcc-multilib make
APT_TEST  := iproute2 nftables tcpdump iperf3 knot knot-dnsutils bind9-dnsutils dnsperf \
             dnsmasq-base unbound kmod procps psmisc iputils-ping ethtool curl cpio stunnel4
APT_LAB   := qemu-system-x86 linux-image-amd64 busybox-static strongswan-charon \
             strongswan-swanctl strongswan-pki strongswan-libcharon libstrongswan-standard-plugins libstrongswan-extra-plugins python3 \
             libnss3-tools openssl libnss3 libnspr4 libevent-core-2.1-7 libevent-pthreads-2.1-7 \
             libunbound8 libldns3 libcurl3-nss libcap-ng0 libaudit1 libldap-2.5-0
# (the last two lines: the libraries of Libreswan's pluto, unpacked — never installed — by
# test/lab/libreswan.mk, and the NSS tools for its certificates)
APT_STAMP := build/.apt-$(shell echo "$(APT_BUILD) $(APT_TEST) $(APT_LAB)" | md5sum | cut -c1-8)

TS_SRC   := $(shell find src -name '*.ts' 2>/dev/null)
BPF_SRC  := $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h)

.PHONY: deps deps-apt deps-npm build bpf run test typecheck clean down dist man

## deps: install missing Debian and npm packages (idempotent; needs root for apt)
deps: deps-apt deps-npm

deps-apt: $(APT_STAMP)
$(APT_STAMP):
	@mkdir -p build
	@missing=$$(for p in $(APT_BUILD) $(APT_TEST) $(APT_LAB); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: need root to install Debian packages:" $$missing >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

deps-npm: node_modules/.stamp
node_modules/.stamp: package.json $(wildcard package-lock.json)
	npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
	@$(BUN) --version >/dev/null || { echo "deps: bun did not install from the npm registry" >&2; exit 1; }
	@touch $@

## build: compile the eBPF object and the single executable dist/dnsseal
build: $(DIST)

BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -D__TARGET_ARCH_$(ARCH) \
              -I/usr/include/$(shell uname -m)-linux-gnu -Ibpf

bpf: $(BPF_OBJ) $(ICPT_OBJ)
build/%.bpf.o: bpf/%.bpf.c $(BPF_SRC) | deps
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The BPF object is embedded: src/datapath/ebpf/object.ts imports it with { type: 'file' }.
# The reload worker (src/daemon/config-worker.ts) is a second entry point of the same executable.
ENTRIES  := src/main.ts src/daemon/config-worker.ts
$(DIST): $(TS_SRC) $(BPF_OBJ) $(ICPT_OBJ) package.json | deps
	@mkdir -p dist
	$(BUN) build --compile --minify-syntax --sourcemap=none $(ENTRIES) --outfile $(DIST)

## dist: release executables for x64 and arm64, glibc and musl (one BPF object serves all:
## the programs use no architecture-specific context).
DIST_TARGETS := linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl
dist: $(BPF_OBJ) $(ICPT_OBJ) | deps
	@mkdir -p dist
	@for t in $(DIST_TARGETS); do \
	  $(BUN) build --compile --minify-syntax --target=bun-$$t $(ENTRIES) --outfile dist/dnsseal-$$t >/dev/null || exit 1; \
	  printf '%-28s %s\n' dist/dnsseal-$$t "$$(du -h dist/dnsseal-$$t | cut -f1)"; \
	done

## man: the manual page build/dnsseal.8, made by `dnsseal man` from the command and settings tables
man: build/dnsseal.8
build/dnsseal.8: $(TS_SRC) package.json | deps
	@mkdir -p build
	$(BUN) src/main.ts man > $@

typecheck: deps
	node_modules/.bin/tsc -p tsconfig.json

## run: start the proxy on the embedded default config (listen 127.0.0.53:53). dnsseal drives
## strongSwan's charon over VICI; when no charon answers, one is started for it, with the
## plugins that would grab traffic or routes on their own turned off (kernel-libipsec,
## bypass-lan, farp, dhcp) and install_routes = no.
RUN_DIR := build/run
run: build
	@if ! swanctl --stats --uri unix:///var/run/charon.vici >/dev/null 2>&1 && [ -x /usr/lib/ipsec/charon ]; then \
	  mkdir -p $(RUN_DIR); rm -f /var/run/charon.vici; \
	  printf '%s\n' 'include /etc/strongswan.conf' 'charon {' '  install_routes = no' '  plugins {' \
	    '    kernel-libipsec { load = no }' '    bypass-lan { load = no }' '    farp { load = no }' \
	    '    dhcp { load = no }' '  }' '}' > $(RUN_DIR)/strongswan.conf; \
	  echo "run: starting charon for dnsseal's IPsec channels (log: $(RUN_DIR)/charon.log)"; \
	  STRONGSWAN_CONF=$(CURDIR)/$(RUN_DIR)/strongswan.conf setsid /usr/lib/ipsec/charon \
	    > $(RUN_DIR)/charon.log 2>&1 < /dev/null & \
	  for i in $$(seq 50); do swanctl --stats >/dev/null 2>&1 && break; sleep 0.1; done; \
	fi
	./$(DIST) run $(RUN_FLAGS)

## test: every test — unit, privileged (netns, eBPF), and the kernel lab
test: build
	$(BUN) test --timeout 120000 test/
	$(MAKE) --no-print-directory lab-if-present

## test-6.1: the eBPF tests inside a Debian 12 (6.1 kernel, clsact, no tcx) lab guest, ~6 min.
## Not part of `make test`: the lab's daemon scenarios already load every program on 6.1.
.PHONY: test-6.1
test-6.1: build
	test/bpf/kernel61.sh

down: build
	./$(DIST) down

clean:
	rm -rf build dist

-include test/lab/*.mk
-include test/demo/*.mk
-include bench/*.mk
-include monitoring/*.mk
-include packaging/*.mk

# Without the lab fragment, `make test` still works.
.PHONY: lab-if-present
lab-if-present:
	@if grep -q '^lab:' test/lab/lab.mk 2>/dev/null; then $(MAKE) --no-print-directory lab; else echo "lab: not present yet"; fi
