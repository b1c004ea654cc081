#!/bin/bash
# ExecStartPre=+ (as root, outside the sandbox) of an instance's main unit when apiKeyFile is set.
# TGI's --api-key comes from API_KEY in its environment, so at each start root turns the key
# file's first line into an env file only podman's user can read, which podman passes with
# --env-file. The key is in no argv (ps, audit logs): `read` and `printf` are shell builtins.
#   $1 KEYFILE  the root-only key file; its first line is the key (a final newline is optional)
#   $2 DEST     the env file to write, in the unit's RuntimeDirectory
#   $3 OWNER    user:group that owns DEST (the rootless user's, or root:root)
#   $4 UNIT     the unit's name, for the error message
# A missing or empty key is refused (exit status 1) rather than starting TGI without one.
set -u
keyfile=$1 dest=$2 owner=$3 unit=$4

umask 077
key=
# read returns non-zero at an end of file without a newline, but has set key by then; a
# missing or unreadable file leaves key empty (and the shell says why on stderr).
IFS= read -r key < "$keyfile"
if [ -z "$key" ]; then
  echo "$unit: apiKeyFile $keyfile is missing or empty" >&2
  exit 1
fi

# A rootless instance's RuntimeDirectory belongs to its user, who could put a symlink at DEST
# for root to write through and chown: remove DEST, create it anew (noclobber: refuses to
# follow a symlink to a file, or to create one's target), and chown the name itself (-h).
set -C
rm -f -- "$dest" &&
  printf 'API_KEY=%s\n' "$key" > "$dest" &&
  chown -h -- "$owner" "$dest" &&
  chmod 0400 -- "$dest"
