"""Everything the harness writes into the guest: image files and the shell helpers of the backdoor.

This module's source is part of the image cache key (`image.image_key`), so editing any file content here
rebuilds the image. The shell helpers (`SHELL_HELPERS`) are sent at connect time instead, so changing them
needs no rebuild.
"""

from __future__ import annotations

READY_MARKER = "tgi-nix-backdoor-ready"

# The port's name: QEMU's `virtserialport,name=...` (qemu.py), /sys/class/virtio-ports/*/name in the guest.
SHELL_PORT_NAME = "tgi-shell"

BACKDOOR_SCRIPT = f"""#!/bin/bash
# Root shell on a virtio serial port, like the NixOS test driver's backdoor. Not the virtio console
# (hvc0): QEMU drops console output it cannot pass on at once (virtio-console.c: "silently dropping
# console data on EAGAIN"), which lost 15 KB of a 3 MB answer when the host was busy; a serial port
# makes the guest's writer wait instead. virtio_console is built into the kernel: the port exists long
# before udev would announce it.
port=
until [ -n "$port" ] && [ -e "$port" ]; do
  for d in /sys/class/virtio-ports/*; do
    [ "$(cat "$d/name" 2>/dev/null)" = {SHELL_PORT_NAME} ] && port=/dev/${{d##*/}}
  done
  [ -n "$port" ] && [ -e "$port" ] || sleep 0.1
done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8 PS1= PS2= HISTFILE=/dev/null
cd /root
# A port opens once (a second open is EBUSY): one read-write descriptor for all three. Not a tty: no
# echo and no line discipline; bash reads a non-seekable input a byte at a time, so a command that
# reads the rest (`head -c`, __tn_recv) gets exactly the bytes after its line.
exec 0<>"$port" 1>&0 2>&0
echo "{READY_MARKER}"
# --noediting: readline made an 8 KB command take a minute (on the console's tty).
exec /bin/bash --norc --noprofile --noediting
"""

BACKDOOR_UNIT = """[Unit]
Description=tgi-nix test backdoor (root shell on a virtio serial port)
DefaultDependencies=no
# Early, like NixOS's backdoor: tests wait for units themselves. After local-fs so /tmp is already mounted.
After=local-fs.target
IgnoreOnIsolate=yes

[Service]
ExecStart=/usr/local/lib/tgi-nix/backdoor
KillSignal=SIGHUP
Restart=always
RestartSec=100ms
"""

# Services that only cost CPU under TCG or wait for things a test VM never has.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "systemd-timesyncd.service",
    "systemd-firstboot.service",
    "podman-auto-update.timer",
    "podman-auto-update.service",
    "podman-restart.service",
    "serial-getty@ttyS0.service",
    "getty@tty1.service",
)

# Only what boots a virtio disk; everything else comes from the root file system.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_console", "ext4")

INITRAMFS_CONF = "MODULES=list\nCOMPRESS=zstd\n"

# `-cpu max` shows SVM/VMX to the guest; loading kvm under TCG only costs boot time.
MODPROBE_CONF = "blacklist kvm_amd\nblacklist kvm_intel\n"

HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tmachine\n"

MOCK_IMPORT_SCRIPT = """#!/bin/sh
# (Re-)import the mock TGI image from its tarball; used at image build time and by imageFile tests.
set -eu
ref=${1:-localhost/tgi-mock:latest}
exec /usr/bin/podman import \\
  --change 'ENTRYPOINT ["/usr/local/bin/text-generation-launcher"]' \\
  --change 'CMD []' \\
  --change 'ENV PORT=80' \\
  --change 'ENV HF_HOME=/data' \\
  --change 'EXPOSE 80' \\
  /opt/tgi-mock.tar "$ref"
"""

# Kernel module folders a headless virtio VM never loads (halves the root file system).
UNUSED_MODULE_DIRS = (
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/net/ethernet",
    "kernel/drivers/usb",
    "kernel/drivers/infiniband",
    "kernel/drivers/staging",
    "kernel/drivers/iio",
    "kernel/drivers/bluetooth",
    "kernel/drivers/isdn",
    "kernel/drivers/scsi",
    "kernel/drivers/hid",
    "kernel/drivers/mtd",
    "kernel/drivers/platform",
    "kernel/drivers/comedi",
    "kernel/net/wireless",
    "kernel/net/mac80211",
    "kernel/net/bluetooth",
    "kernel/sound",
    "kernel/fs/ocfs2",
    "kernel/fs/xfs",
    "kernel/fs/btrfs",
    "kernel/fs/nfs",
    "kernel/fs/smb",
)

# Bash functions defined in the backdoor shell right after connecting.
#   __tn_run MARKER TIMEOUT B64SCRIPT|@FILE: run a script (stdin /dev/null, stdout, stderr to files),
#     then print "\nMARKER:RC:B64(stdout):B64(stderr):MARKER-END\n"; RC is "timeout" when the timeout killed it.
#   __tn_recv MARKER PATH NBYTES: print "MARKER-GO", read NBYTES of base64 from the console into PATH.
SHELL_HELPERS = r"""
__tn_run() {
  local m=$1 t=$2 d=/run/tgi-nix-bd rc s
  mkdir -p $d
  case $3 in
    @*) cp "${3#@}" $d/cmd ;;
    *) printf '%s' "$3" | base64 -d > $d/cmd ;;
  esac
  s=$SECONDS
  if [ "$t" = 0 ]; then
    bash $d/cmd </dev/null >$d/out 2>$d/err; rc=$?
  else
    timeout -k 5 "$t" bash $d/cmd </dev/null >$d/out 2>$d/err; rc=$?
    if { [ $rc = 124 ] || [ $rc = 137 ]; } && [ $((SECONDS - s)) -ge "$t" ]; then rc=timeout; fi
  fi
  printf '\n%s:%s:' "$m" "$rc"; base64 -w0 $d/out; printf ':'; base64 -w0 $d/err; printf ':%s-END\n' "$m"
}
__tn_recv() {
  local rc
  mkdir -p "$(dirname "$2")"
  printf '\n%s-GO\n' "$1"
  head -c "$3" | base64 -d > "$2"; rc=$?
  printf '\n%s:%s:::%s-END\n' "$1" "$rc" "$1"
}
"""
