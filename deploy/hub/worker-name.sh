#!/bin/sh
# Prints a name for this container's Celery worker that no other container has: "worker-" and
# the container's short id. Needed when containers share the host's network and so its host
# name (docker-compose.test.yml), where `celery@$HOSTNAME` would be the same for every replica;
# the id is in the path of the files Docker mounts into every container (/etc/hosts and others).
set -eu
id=$(sed -n 's|.*/containers/\([0-9a-f]\{12\}\)[0-9a-f]*/.*|\1|p' /proc/self/mountinfo | head -n 1)
[ -n "$id" ] || { echo "worker-name: no container id in /proc/self/mountinfo" >&2; exit 1; }
echo "worker-$id"
