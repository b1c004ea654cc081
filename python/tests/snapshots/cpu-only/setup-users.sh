#!/bin/bash
# render-units' setup-users.sh (hosts without NixOS; there, the module's users.users does this):
# what the rootless units need before they start, for each of their users. Run as root, once and
# after every render; it changes nothing that is already right, and refuses (exit 1, nothing
# changed for that user) what it cannot make right:
#   - a system user and group of the same name with the uid (and gid) the units were rendered for
#     (they name user@<uid>.service and /run/user/<uid>);
#   - a subordinate uid and gid range of 65536 ids (rootless podman's user namespace), after the
#     highest range already given out, from 100000 up;
#   - lingering, so the user's systemd manager (which runs podman's health checks) runs from boot.
# setup_users NAME UID HOME [NAME UID HOME ...]
set -euo pipefail

subid_count=65536
# Where the id files and logind's linger flags live (tests point these at a scratch directory).
subuid_file=${SETUP_USERS_SUBUID:-/etc/subuid}
subgid_file=${SETUP_USERS_SUBGID:-/etc/subgid}
linger_dir=${SETUP_USERS_LINGER_DIR:-/var/lib/systemd/linger}

# The first id after every range in /etc/subuid and /etc/subgid (100000 if none is given out).
next_free_subid() {
  local next=100000 file start count
  for file in "$subuid_file" "$subgid_file"; do
    [ -e "$file" ] || continue
    while IFS=: read -r _ start count; do
      [[ "$start" =~ ^[0-9]+$ && "$count" =~ ^[0-9]+$ ]] || continue
      if [ $((start + count)) -gt "$next" ]; then next=$((start + count)); fi
    done <"$file"
  done
  echo "$next"
}

setup_user() {
  local name=$1 uid=$2 home=$3 have other first
  if have=$(id -u "$name" 2>/dev/null); then
    if [ "$have" != "$uid" ]; then
      echo "setup-users: user $name exists with uid $have, but the units were rendered for uid $uid; set uid = $have on the instances that run as $name (the spec's uid option) and render the units again" >&2
      return 1
    fi
  else
    if other=$(getent passwd "$uid"); then
      echo "setup-users: uid $uid (for user $name) already belongs to user ${other%%:*}; set uid to a free one on the instances that run as $name (the spec's uid option) and render the units again" >&2
      return 1
    fi
    if other=$(getent group "$uid"); then
      echo "setup-users: gid $uid (for user $name's group) already belongs to group ${other%%:*}; set uid to an id free as uid and gid on the instances that run as $name and render the units again" >&2
      return 1
    fi
    getent group "$name" >/dev/null || groupadd --system --gid "$uid" "$name"
    useradd --system --uid "$uid" --gid "$name" --home-dir "$home" --no-create-home \
      --shell /usr/sbin/nologin --comment "Rootless podman for Hugging Face TGI" "$name"
    echo "setup-users: created system user $name (uid $uid)"
  fi
  if ! grep -q "^$name:" "$subuid_file" 2>/dev/null || ! grep -q "^$name:" "$subgid_file" 2>/dev/null; then
    first=$(next_free_subid)
    grep -q "^$name:" "$subuid_file" 2>/dev/null || usermod --add-subuids "$first-$((first + subid_count - 1))" "$name"
    grep -q "^$name:" "$subgid_file" 2>/dev/null || usermod --add-subgids "$first-$((first + subid_count - 1))" "$name"
    echo "setup-users: gave $name subordinate ids $first-$((first + subid_count - 1))"
  fi
  if [ ! -e "$linger_dir/$name" ]; then
    loginctl enable-linger "$name"
    echo "setup-users: enabled lingering for $name (user@$uid.service runs from boot)"
  fi
}

setup_users() {
  local failed=0
  while [ $# -ge 3 ]; do
    setup_user "$1" "$2" "$3" || failed=1
    shift 3
  done
  return "$failed"
}

setup_users huggingface-tgi 47481 /var/lib/huggingface-tgi/.rootless/huggingface-tgi
