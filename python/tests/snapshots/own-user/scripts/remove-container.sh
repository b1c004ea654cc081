#!/bin/bash
# ExecStopPost= of a rootful instance's main unit: remove the container, after re-attaching its
# network namespace if conmon died. (A rootless instance needs no script: its networking, pasta,
# lives in the container's user namespace and dies with it, so a plain `podman rm` does.)
#   $1 PODMAN   podman's path
#   $2 CIDFILE  the file `podman run --cidfile=` wrote the container's id to
#   $3 UNIT     the unit's name, for the message
#
# ExecStopPost runs in a fresh mount namespace, so the container's netns mount (made by podman in
# ExecStart's namespace) is an empty file here. When conmon died (SIGKILL, OOM) nothing tore the
# network down, and `podman rm` would fail to open the netns and leave netavark's DNAT rule
# behind, shadowing the next container's. Re-attach the netns first: from a process still in the
# container's cgroup, else a fresh empty one, so netavark can remove its firewall rules. mount and
# unshare are util-linux.
set -u
podman=$1 cidfile=$2 unit=$3

if cid=$(cat "$cidfile" 2>/dev/null) &&
  state=$("$podman" container inspect --format '{{.State.Pid}} {{.NetworkSettings.SandboxKey}}' "$cid" 2>/dev/null); then
  pid=${state%% *} netns=${state#* }
  if [ -n "$netns" ] && [ -f "$netns" ] && [ "$(stat -f -c %T "$netns")" != nsfs ]; then
    if [ "$pid" -gt 0 ] && grep -qs "$cid" "/proc/$pid/cgroup"; then
      mount --bind "/proc/$pid/ns/net" "$netns"
    else
      unshare --net="$netns" true
    fi && echo "$unit: re-attached the network namespace of container $cid to clean up after conmon died"
  fi
fi
exec "$podman" rm --force --ignore --cidfile="$cidfile"
