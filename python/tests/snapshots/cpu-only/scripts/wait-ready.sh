#!/bin/bash
# ExecStartPost= of an instance's main unit: the unit turns active when this exits 0, i.e. when
# TGI's /health answers 200 on the published address, seen from the host like any client sees it
# (so stale port forwarding or a dead proxy keep the unit activating, not a false `active`).
#   $1 HOST  the address this host reaches the instance on (IPv4, or IPv6 without brackets)
#   $2 PORT  the published port
#   $3 UNIT  the unit's name, for the messages
#   $4 PODMAN, $5 CONTAINER  (optional) run podman's health check once when ready: its startup
#            check hands over to liveness on its first pass and its failures never count, so a
#            server that turned unhealthy before the first scheduled run (every 30 s) was never
#            killed (measured in the VM: stuck in "starting" while /health answered 503). In the
#            background, so activation does not wait for it.
#
# podman runs with --sdnotify=conmon: systemd starts this as soon as the container runs, and
# TimeoutStartSec= bounds it. It polls every 0.25 s. The port is closed while TGI downloads and
# loads (the router starts after the shards), or open with 503 (a server that answers early): both
# mean "not yet". systemd does not stop ExecStartPost= when the main process exits, so this checks
# $MAINPID (set by systemd; conmon) on every round and fails at once when the container is gone.
# bash for /dev/tcp: no HTTP client is needed on the host. Progress goes to systemd's STATUS=.
set -u
host=$1 port=$2 unit=$3 podman=${4:-} container=${5:-}
url="http://$host:$port/health"
case $host in *:*) url="http://[$host]:$port/health" ;; esac

# One GET /health; prints the status code, or "closed" when nothing accepts the connection.
probe() {
  local line
  if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
    echo closed
    return
  fi
  printf 'GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host:$port" >&3
  if IFS=' ' read -r -t 2 _ line <&3; then
    line=${line%$'\r'}
    echo "${line%% *}"
  else
    echo "no-answer"
  fi
  exec 3<&- 3>&-
}

status() {
  systemd-notify --status="$1" 2>/dev/null || true
}

last=""
start=$SECONDS
while :; do
  code=$(probe)
  code=${code:-closed}
  if [ "$code" = 200 ]; then
    echo "$unit: $url answered 200 after $((SECONDS - start)) s: ready"
    status "Ready: $url answers 200"
    if [ -n "$podman" ] && [ -n "$container" ]; then
      "$podman" healthcheck run "$container" </dev/null >/dev/null 2>&1 &
    fi
    exit 0
  fi
  if [ -n "${MAINPID:-}" ] && ! kill -0 "$MAINPID" 2>/dev/null; then
    echo "$unit: the container exited before $url answered 200 (last: ${last:-nothing}); its output is above" >&2
    exit 1
  fi
  if [ "$code" != "$last" ]; then
    case $code in
      closed) what="port closed (TGI downloads or loads the model)" ;;
      no-answer) what="connected, no answer within 2 s" ;;
      *) what="HTTP $code (not ready)" ;;
    esac
    echo "$unit: waiting for $url: $what"
    status "Starting: $url: $what"
    last=$code
  fi
  sleep 0.25
done
