#!/bin/sh
# /entrypoint of the hub image on a plain Debian base: the part of Airflow's official entrypoint
# that docker-compose.yml relies on, so one compose file serves both bases. A command that is an
# Airflow sub-command runs under `airflow` (`scheduler` -> `airflow scheduler`, `celery worker` ->
# `airflow celery worker`); `airflow ...`, `bash`, `sh` and `python ...` run as given.
set -e
case "${1:-}" in
  "") set -- airflow version ;;
  airflow|bash|sh|python|python3) ;;
  *) set -- airflow "$@" ;;
esac
exec "$@"
