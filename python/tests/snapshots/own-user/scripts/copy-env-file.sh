#!/bin/bash
# ExecStartPre=+ (as root, outside the sandbox) of a rootless instance's main unit when
# environmentFile is set. The environment file is root-only; rootless podman reads it only after
# joining its user's namespaces, where it may not (nor a LoadCredential= copy: the credentials
# mount denies it there, measured). So root copies it at each start into the unit's
# RuntimeDirectory, readable by the user only; it goes away when the unit stops.
#   $1 SRC   the root-only environment file
#   $2 DEST  the copy podman reads with --env-file
#   $3 USER  the rootless user, who owns the copy (group: the user's group of the same name)
set -u
src=$1 dest=$2 user=$3

exec install -m 0400 -o "$user" -g "$user" -- "$src" "$dest"
