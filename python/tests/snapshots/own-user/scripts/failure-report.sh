#!/bin/bash
# Last ExecStopPost= of an instance's main unit (and of its image unit): after a failure, one
# line in the journal that says why the unit stopped and where to look, next to the container's
# own log lines.
#   $1 UNIT           the unit's name
#   $2 START_TIMEOUT  the instance's startTimeout, as written in its TimeoutStartSec=
#   $3 IMAGE          (image unit only) the image it failed to fetch
# systemd sets SERVICE_RESULT (and EXIT_STATUS, once the main process has exited) for
# ExecStopPost=. Prints nothing after a clean stop. Always exits 0: a report must not fail the
# unit itself.
set -u
unit=${1-} start_timeout=${2-} image=${3-}

if [ -n "$image" ]; then
  case ${SERVICE_RESULT-} in
    exit-code | signal | core-dump | timeout)
      echo "$unit: could not fetch image $image (${SERVICE_RESULT-}, status ${EXIT_STATUS-}); retried every 30 s, at most 10 times an hour, then the unit stays failed: check the tag and the registry, then run systemctl reset-failed $unit"
      ;;
  esac
  exit 0
fi

case ${SERVICE_RESULT-} in
  timeout)
    echo "$unit: not healthy within startTimeout ($start_timeout); see the container's log lines above; raise startTimeout if loading (with downloadModel = false: TGI's own download too) needs longer"
    ;;
  exit-code | signal | core-dump)
    echo "$unit: container stopped (${SERVICE_RESULT-}, status ${EXIT_STATUS-}); see the lines above"
    ;;
esac
exit 0
