#!/bin/sh
# /init of a Janus Linux personality (a busybox initramfs).
#
# `janus-initramfs --name NAME` embeds this file as /init, with the name
# placeholder in the NAME= line below replaced by the personality's name,
# which becomes the hostname.
# It mounts the kernel file systems, installs the busybox applets, names the
# host, mounts the personality's volume on /data and the shared folder on
# /shared (saying so in one line each), prints
# "NAME: ready" and keeps an interactive shell on the console,
# starting a new one whenever it exits. It runs as PID 1 and never exits (the
# kernel would panic): power off with `poweroff -f`, restart with `reboot -f`
# (the login shell's `poweroff`, `reboot` and `halt` do the same, as there is no
# init daemon to ask, after unmounting /shared and writing out and unmounting
# /data).

NAME=@JANUS_NAME@
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
bb=/bin/busybox

# The kernel file systems. devtmpfs replaces the initramfs' own /dev, whose
# console node only served to open the console for this script.
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$bb mount -t tmpfs -o mode=0755 tmpfs /run

# Every applet as a symlink in /bin, /sbin, /usr/bin and /usr/sbin.
$bb --install -s

hostname "$NAME"
echo "$NAME" >/etc/hostname

# The kernel modules for the volume (virtio-mmio, virtio-blk, ext4) and the
# shared folder (the 9P client over virtio) and what they need, which
# janus-initramfs lists dependencies first in load-order.
if [ -f /lib/modules/load-order ]; then
    while read -r module; do
        insmod "/lib/modules/$module" || echo "$NAME: cannot load $module"
    done </lib/modules/load-order
fi

# The volume: Janus' virtio-blk device, /dev/vda, one ext4 file system (no
# partition table), mounted on /data. Without one, /data stays in the RAM
# root file system. The block device's node may come a moment after its
# virtio device is found, so wait for it, for 5 s at most.
has_virtio_disk() {
    for device in /sys/bus/virtio/devices/*/device; do
        # Virtio device ID 2: a block device (virtio 1.2, section 5).
        [ "$(cat "$device" 2>/dev/null)" = 0x0002 ] && return 0
    done
    return 1
}
in_ram="/data is in RAM and lost at reboot"
if ! has_virtio_disk; then
    echo "$NAME: no volume; $in_ram"
else
    waited=0
    while [ ! -b /dev/vda ] && [ "$waited" -lt 50 ]; do
        usleep 100000
        waited=$((waited + 1))
    done
    if [ ! -b /dev/vda ]; then
        echo "$NAME: the volume did not appear as /dev/vda within 5 s; $in_ram"
    elif error="$(mount -t ext4 /dev/vda /data 2>&1)"; then
        mib=$(($(cat /sys/block/vda/size) / 2048))
        echo "$NAME: /data is the $NAME volume (ext4, $mib MiB), kept across reboots"
    else
        echo "$NAME: cannot mount /dev/vda on /data (${error:-no reason given}); $in_ram"
    fi
fi

# The shared folder: Janus' virtio-9p device (virtio device ID 9, mount tag
# "shared"), 9P2000.L, mounted on /shared. cache=none: every read and write
# goes to Janus, so what one personality closes the other sees at once (the
# kernel then also mounts it sync,dirsync). msize 131072 is the kernel's
# default, written out so that it stays what Janus is measured with.
has_shared_folder() {
    for device in /sys/bus/virtio/devices/*; do
        # Virtio device ID 9: a 9P transport (virtio 1.2, section 5).
        [ "$(cat "$device/device" 2>/dev/null)" = 0x0009 ] &&
            [ "$(cat "$device/mount_tag" 2>/dev/null)" = shared ] && return 0
    done
    return 1
}
shared_options=trans=virtio,version=9p2000.L,msize=131072,cache=none
if ! has_shared_folder; then
    echo "$NAME: no shared folder; no 9P device with the tag shared"
elif error="$(mount -t 9p -o "$shared_options" shared /shared 2>&1)"; then
    echo "$NAME: /shared is the shared folder (9p)"
else
    echo "$NAME: no shared folder; cannot mount it on /shared (${error:-no reason given})"
fi

# What every login shell reads: the prompt shows the hostname (ash expands \h),
# and there is no init daemon to ask for a clean shutdown, so do it at once.
cat >/etc/profile <<'PROFILE'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='\h:\w# '
# Before the machine stops: the shared folder is let go (its open files
# closed, which is when Janus makes them durable), everything written reaches
# the volume, which is unmounted (or at least made read-only) so the next mount
# needs no recovery.
release_data() {
    cd /
    if grep -q ' /shared ' /proc/mounts; then
        umount /shared 2>/dev/null || umount -l /shared 2>/dev/null
    fi
    sync
    if grep -q ' /data ' /proc/mounts; then
        umount /data 2>/dev/null || mount -o remount,ro /data 2>/dev/null
        sync
    fi
}
poweroff() { release_data; /bin/busybox poweroff -f "$@"; }
reboot() { release_data; /bin/busybox reboot -f "$@"; }
halt() { release_data; /bin/busybox halt -f "$@"; }
PROFILE
export PS1='\h:\w# '
cd /root

echo "$NAME: ready"

# The shell: setsid gives it a session of its own, cttyhack opens the console
# (ttyAMA0) as its controlling terminal, so job control and Ctrl-C work.
while :; do
    setsid cttyhack sh -l
    echo "$NAME: shell exited, starting a new one"
    sleep 1
done
