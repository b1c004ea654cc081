#!/bin/bash
# ExecStart= (Type=notify) of an instance's model unit: downloads the model into the cache with
# the image's own downloader (`text-generation-server download-weights`, what TGI's launcher
# runs), first offline (a complete cache needs no Hub and fetches nothing), then online. While
# the download runs it measures the bytes in the model's cache directory every INTERVAL seconds
# and tells systemd (STATUS= with bytes and rate, EXTEND_TIMEOUT_USEC= to keep the start timeout
# ahead); when no byte arrived for STALL seconds it removes the container and fails with one
# line that names the stall. READY=1 once the model is complete.
#   $1 MODEL_DIR  the model's directory in the host's cache (hub/models--<owner>--<name>)
#   $2 STALL      seconds without a new byte before the download counts as stalled
#   $3 INTERVAL   seconds between two measurements
#   $4 INSTANCE   the instance name (for the option path in the failure line)
#   $5 STALL_TEXT downloadStallTimeout as written (for the failure line)
#   $6 CONTAINER  the downloader's container name
#   $7 PODMAN     the podman binary
#   $8...         the arguments of `podman run` (starting with `run`) up to the downloader's last word
set -u
model_dir=$1 stall=$2 interval=$3 instance=$4 stall_text=$5 container=$6 podman=$7
shift 7
[ "${1-}" = run ] || {
  echo "model-download: the podman arguments must start with 'run'" >&2
  exit 2
}
shift

notify() {
  systemd-notify "$@" || true
}

# Bytes in the model's cache directory (du counts what is on disk: sparse preallocations do not
# count as progress). 0 before the downloader created it.
cached_bytes() {
  if [ -d "$model_dir" ]; then
    kib=$(du -sk "$model_dir" 2>/dev/null | cut -f1)
    echo $((${kib:-0} * 1024))
  else
    echo 0
  fi
}

# MB with one decimal, from bytes (decimal units, as download tools show them).
mb() {
  tenths=$(($1 / 100000))
  echo "$((tenths / 10)).$((tenths % 10))"
}

start_bytes=$(cached_bytes)
model=${model_dir##*/models--}
model=$(echo "$model" | sed 's/--/\//')

notify "STATUS=Checking the cache for $model"
if "$podman" run --env=HF_HUB_OFFLINE=1 "$@"; then
  echo "$model is complete in the cache; nothing downloaded (0 bytes fetched)"
  notify --ready "STATUS=$model is complete in the cache ($(mb "$start_bytes") MB)"
  exit 0
fi
echo "$model is not complete in the cache; downloading it"

"$podman" run "$@" &
pid=$!
last=$start_bytes
quiet=0
# Each measurement lets the start timeout run until the next one could declare a stall.
extend_usec=$(((stall + 2 * interval + 30) * 1000000))
notify "STATUS=Downloading $model: $(mb "$last") MB so far" "EXTEND_TIMEOUT_USEC=$extend_usec"
while kill -0 "$pid" 2>/dev/null; do
  sleep "$interval"
  kill -0 "$pid" 2>/dev/null || break
  now=$(cached_bytes)
  if [ "$now" -gt "$last" ]; then
    quiet=0
    rate=$(mb "$(((now - last) / interval))")
    notify "STATUS=Downloading $model: $(mb "$now") MB so far, $rate MB/s" "EXTEND_TIMEOUT_USEC=$extend_usec"
    last=$now
  else
    quiet=$((quiet + interval))
    if [ "$quiet" -ge "$stall" ]; then
      reason="download of $model stalled: no bytes arrived for $stall_text (downloadStallTimeout) at $(mb "$now") MB; check the network to huggingface.co or raise services.huggingface-tgi.instances.$instance.downloadStallTimeout"
      notify "STATUS=$reason"
      "$podman" rm --force --time=0 --ignore "$container" >/dev/null 2>&1 || true
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "$reason" >&2
      exit 1
    fi
    notify "STATUS=Downloading $model: $(mb "$now") MB so far, 0.0 MB/s (nothing for ${quiet}s)" "EXTEND_TIMEOUT_USEC=$extend_usec"
  fi
done
wait "$pid"
rc=$?
end_bytes=$(cached_bytes)
if [ "$rc" -ne 0 ]; then
  notify "STATUS=Download of $model failed (status $rc) at $(mb "$end_bytes") MB; see the downloader's lines in the journal"
  echo "download of $model failed (status $rc); see the downloader's lines above" >&2
  exit "$rc"
fi
fetched=$((end_bytes - start_bytes))
echo "downloaded $model: $fetched bytes fetched ($(mb "$end_bytes") MB in the cache)"
notify --ready "STATUS=$model downloaded ($(mb "$end_bytes") MB, $(mb "$fetched") MB fetched)"
exit 0
