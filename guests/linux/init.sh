#!/bin/sh
# /init of a Janus Linux personality (a busybox initramfs).
#
# `janus-initramfs --name NAME` embeds this file as /init, with the name
# placeholder in the NAME= line below replaced by the personality's name,
# which becomes the hostname.
# It mounts the kernel file systems, installs the busybox applets, names the
# host, prints "NAME: ready" and keeps an interactive shell on the console,
# starting a new one whenever it exits. It runs as PID 1 and never exits (the
# kernel would panic): power off with `poweroff -f`, restart with `reboot -f`
# (the login shell's `poweroff`, `reboot` and `halt` do the same, as there is no
# init daemon to ask).

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

# What every login shell reads: the prompt shows the hostname (ash expands \h),
# and there is no init daemon to ask for a clean shutdown, so do it at once.
cat >/etc/profile <<'PROFILE'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='\h:\w# '
poweroff() { /bin/busybox poweroff -f "$@"; }
reboot() { /bin/busybox reboot -f "$@"; }
halt() { /bin/busybox halt -f "$@"; }
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
