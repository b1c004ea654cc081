#!/bin/bash
# ExecStart= of an instance's image unit (huggingface-tgi-NAME-image.service), for the two pull
# policies that need a fallback: podman 5 has no `pull --policy`, so they are spelled out here.
# (always is a plain `podman pull IMAGE`, never a plain `podman image exists IMAGE`, and an
# imageFile a plain `podman load`: those need no script.)
#   $1 PODMAN  podman's path
#   $2 POLICY  missing: pull only if the image is absent
#              newer:   pull, but keep the local copy if the registry is unreachable
#   $3 IMAGE   the image reference
# Any other POLICY is a caller bug: a message on stderr and exit status 2.
set -u
podman=$1 policy=$2 image=$3

case $policy in
  missing) "$podman" image exists "$image" || exec "$podman" pull "$image" ;;
  newer) "$podman" pull "$image" || "$podman" image exists "$image" ;;
  *)
    echo "fetch-image.sh: unknown pull policy '$policy' (expected missing or newer)" >&2
    exit 2
    ;;
esac
