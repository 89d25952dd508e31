#!/bin/sh
# Makes the Dockerfile's base ready for the hub, whichever base the build was given (as root):
#
# * Airflow's official image (the default, what users pull): it already has Python, the airflow
#   user (uid 50000, group 0), dumb-init, curl and its /entrypoint; only Debian's Swedish word list
#   (free-text scrubbing tells names from words with it, and is weaker without it) and OpenSSH's
#   client tools (ssh-keygen signs deliveries and register events) are added.
# * a plain Debian bookworm (built locally where image registries cannot be reached, see
#   scripts/docker): Debian's Python 3.11 with venv, dumb-init, curl and time zones, the same
#   airflow user, and deploy/hub/entrypoint.sh as /entrypoint, so docker-compose.yml runs the same
#   commands on both bases.
set -eu
here=$(dirname "$0")
packages="wswedish openssh-client"
if ! id airflow >/dev/null 2>&1; then
  plain=yes
  packages="$packages python3 python3-venv dumb-init curl ca-certificates tzdata"
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
apt-get clean
rm -rf /var/lib/apt/lists/*
test -s /usr/share/dict/swedish
command -v ssh-keygen >/dev/null

if [ "${plain:-}" = yes ]; then
  useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow
  install -m 755 "$here/entrypoint.sh" /entrypoint
  install -d -o airflow -g 0 -m 775 /opt/airflow
fi
