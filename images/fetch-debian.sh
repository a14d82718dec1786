#!/usr/bin/env bash
# Fetches the Linux personalities' ingredients from Debian's arm64 archive:
#
#   target/cache/debian/Image     the kernel of the current linux-image-arm64
#                                 (an uncompressed arm64 Image, ready for -kernel)
#   target/cache/debian/busybox   the static arm64 busybox (busybox-static:arm64)
#   target/cache/debian/VERSION   the kernel package it came from, e.g. 6.1.0-41-arm64
#   target/cache/debian/kernel/   the kernel package unpacked (config-*, System.map,
#                                 lib/modules/: modules a later initramfs may need)
#   target/cache/debian/debs/     the downloaded packages
#
# Run from anywhere, as root (or with sudo available). When the cache is complete it
# does nothing at all; delete target/cache/debian to fetch the newest kernel again.
# Needs only dpkg and apt (Debian 12): it adds the arm64 architecture to dpkg when
# missing and runs `apt-get update` only when there are no arm64 package lists yet or
# when a download fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$repo_root/target/cache/debian"

log() { printf 'fetch-debian: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Fast path: everything is already there.
if [[ -s "$cache/Image" && -s "$cache/busybox" && -s "$cache/VERSION" ]]; then
    exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "run as root (dpkg and apt-get need it)"
    sudo=(sudo)
fi

# Run as root, apt downloads as the unprivileged _apt user, which cannot write into a
# root-only cache folder (it warns and falls back); download as root straight away.
# `apt-get download` needs no privileges, so it runs without sudo for other users.
apt_opts=(-o APT::Sandbox::User=root)

mkdir -p "$cache/debs"

# 1. arm64 packages must be known to dpkg and apt.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding the arm64 architecture to dpkg"
    "${sudo[@]}" dpkg --add-architecture arm64
fi

updated=no
apt_update() {
    [[ $updated == yes ]] && return 0
    log "apt-get update"
    "${sudo[@]}" apt-get update -q >&2
    updated=yes
}

if ! compgen -G '/var/lib/apt/lists/*binary-arm64_Packages*' >/dev/null; then
    apt_update
fi

# 2. The kernel package the metapackage linux-image-arm64 currently points to:
# linux-image-<abi>-arm64 (the signed one), not -unsigned or -dbg.
resolve_kernel() {
    apt-cache depends linux-image-arm64:arm64 2>/dev/null |
        sed -n 's/^ *Depends: *//p' |
        sed 's/:arm64$//' |
        grep -E '^linux-image-[0-9].*-arm64$' |
        head -n 1 || true
}

kernel_pkg="$(resolve_kernel)"
if [[ -z "$kernel_pkg" ]]; then
    apt_update
    kernel_pkg="$(resolve_kernel)"
fi
[[ -n "$kernel_pkg" ]] || die "cannot resolve linux-image-arm64:arm64 to a kernel package"
kernel_version="${kernel_pkg#linux-image-}"
log "kernel package: $kernel_pkg"

# 3. Download (into the cache; apt-get download writes into the current folder).
download() {
    (cd "$cache/debs" && apt-get "${apt_opts[@]}" download -q "$@" >&2)
}

have_debs() {
    compgen -G "$cache/debs/${kernel_pkg}_*_arm64.deb" >/dev/null &&
        compgen -G "$cache/debs/busybox-static_*_arm64.deb" >/dev/null
}

packages=("$kernel_pkg:arm64" busybox-static:arm64)
if have_debs; then
    log "reusing the packages in $cache/debs"
elif ! {
    # Old downloads of other versions are of no use any more.
    rm -f "$cache"/debs/*.deb
    download "${packages[@]}"
}; then
    log "download failed; refreshing the package lists and trying again"
    updated=no
    apt_update
    rm -f "$cache"/debs/*.deb
    # The lists may now name a newer kernel.
    kernel_pkg="$(resolve_kernel)"
    [[ -n "$kernel_pkg" ]] || die "cannot resolve linux-image-arm64:arm64 to a kernel package"
    kernel_version="${kernel_pkg#linux-image-}"
    packages=("$kernel_pkg:arm64" busybox-static:arm64)
    download "${packages[@]}" || die "apt-get download ${packages[*]} failed"
fi

kernel_deb="$(compgen -G "$cache/debs/${kernel_pkg}_*_arm64.deb" | head -n 1 || true)"
busybox_deb="$(compgen -G "$cache/debs/busybox-static_*_arm64.deb" | head -n 1 || true)"
[[ -n "$kernel_deb" ]] || die "no ${kernel_pkg}_*_arm64.deb after the download"
[[ -n "$busybox_deb" ]] || die "no busybox-static_*_arm64.deb after the download"

# 4. Unpack.
rm -rf "$cache/kernel" "$cache/busybox-pkg"
dpkg-deb -x "$kernel_deb" "$cache/kernel"
dpkg-deb -x "$busybox_deb" "$cache/busybox-pkg"

vmlinuz="$cache/kernel/boot/vmlinuz-$kernel_version"
[[ -f "$vmlinuz" ]] || vmlinuz="$(compgen -G "$cache/kernel/boot/vmlinuz-*" | head -n 1 || true)"
[[ -n "$vmlinuz" && -f "$vmlinuz" ]] || die "$kernel_deb holds no /boot/vmlinuz-*"

# An arm64 Image carries the magic "ARM\x64" at offset 0x38; Debian may ship it as is
# or gzip-compressed (QEMU's -kernel and Janus want it uncompressed).
arm64_magic() { [[ "$(od -An -tx1 -j 0x38 -N 4 "$1" | tr -d ' \n')" == 41524d64 ]]; }
gzip_magic() { [[ "$(od -An -tx1 -N 2 "$1" | tr -d ' \n')" == 1f8b ]]; }

if arm64_magic "$vmlinuz"; then
    cp "$vmlinuz" "$cache/Image.tmp"
elif gzip_magic "$vmlinuz"; then
    log "decompressing $(basename "$vmlinuz") (gzip)"
    gzip -dc "$vmlinuz" >"$cache/Image.tmp"
else
    die "$(basename "$vmlinuz") is neither an arm64 Image nor gzip"
fi
arm64_magic "$cache/Image.tmp" || die "the kernel has no arm64 Image header (magic ARM\\x64 at 0x38)"

busybox_bin="$cache/busybox-pkg/bin/busybox"
[[ -f "$busybox_bin" ]] || die "$busybox_deb holds no /bin/busybox"
cp "$busybox_bin" "$cache/busybox.tmp"
chmod 0755 "$cache/busybox.tmp"
rm -rf "$cache/busybox-pkg"

# 5. Publish, VERSION last: the fast path above trusts a cache that has it.
mv -f "$cache/Image.tmp" "$cache/Image"
mv -f "$cache/busybox.tmp" "$cache/busybox"
printf '%s\n' "$kernel_version" >"$cache/VERSION.tmp"
mv -f "$cache/VERSION.tmp" "$cache/VERSION"
log "kernel $kernel_version: $cache/Image ($(stat -c %s "$cache/Image") bytes)," \
    "busybox $(stat -c %s "$cache/busybox") bytes"
