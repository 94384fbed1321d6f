# Packages (packaging/README.md): `make package` builds, without network beyond what `make dist`
# needs for Bun's musl runtimes,
#   build/package/dnsseal_VERSION_ARCH.deb          Debian/Ubuntu, from dist/dnsseal (this machine's arch)
#   build/package/dnsseal_VERSION_x86_64.ipk        OpenWrt, from dist/dnsseal-linux-x64-musl
#   build/package/dnsseal_VERSION_aarch64_generic.ipk   OpenWrt, from dist/dnsseal-linux-arm64-musl
# The tests (test/packaging/) build their own packages from dist/dnsseal, uncompressed.

PKG_OUT      := build/package
PKG_VERSION  ?= $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json)
DEB_ARCH     ?= $(shell dpkg --print-architecture)
DEB_COMPRESS ?= xz
# OpenWrt package architectures per musl build; set the one of your device
# (`opkg print-architecture`), e.g. IPK_ARCH_arm64=aarch64_cortex-a53.
IPK_ARCH_x64   ?= x86_64
IPK_ARCH_arm64 ?= aarch64_generic

# ── The man page ────────────────────────────────────────────────────────────────────────────
# build/dnsseal.8 (the Makefile's `man` target: `dnsseal man`, generated from the command and
# settings tables) goes into the .deb as /usr/share/man/man8/dnsseal.8.gz.
MAN_PAGE := build/dnsseal.8

.PHONY: package package-deb package-ipk

## package: the Debian package and the OpenWrt packages in build/package/
package: package-deb package-ipk
	@ls -l $(PKG_OUT)/*.deb $(PKG_OUT)/*.ipk | awk '{ printf "%-48s %5.1f MB\n", $$NF, $$5 / 1048576 }'

package-deb: $(DIST) $(MAN_PAGE)
	packaging/build-deb.sh --binary $(DIST) --out $(PKG_OUT) --version $(PKG_VERSION) --arch $(DEB_ARCH) \
	  --compress $(DEB_COMPRESS) --man $(MAN_PAGE)

package-ipk: $(DIST) dist/dnsseal-linux-x64-musl dist/dnsseal-linux-arm64-musl
	packaging/build-ipk.sh --binary dist/dnsseal-linux-x64-musl --arch $(IPK_ARCH_x64) --out $(PKG_OUT) \
	  --version $(PKG_VERSION) --host-binary $(DIST)
	packaging/build-ipk.sh --binary dist/dnsseal-linux-arm64-musl --arch $(IPK_ARCH_arm64) --out $(PKG_OUT) \
	  --version $(PKG_VERSION) --host-binary $(DIST)

# One release executable (`make dist` builds all four).
dist/dnsseal-linux-%: $(TS_SRC) $(BPF_OBJ) $(ICPT_OBJ) package.json | deps
	@mkdir -p dist
	$(BUN) build --compile --minify-syntax --target=bun-linux-$* src/main.ts --outfile $@ >/dev/null
