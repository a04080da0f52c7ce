#!/bin/sh
# The entrypoint of every image built from deploy/docker/Dockerfile: the service's own console
# script, mvno-$SERVICE, with the command it is given (a worker's `consume`, a job's `migrate`...),
# or, given none, serving its API on $PORT. exec, so the service itself receives SIGTERM and
# shuts down gracefully.
set -eu
if [ "$#" -eq 0 ]; then
    set -- serve --host 0.0.0.0 --port "$PORT" --timeout-graceful-shutdown 20
fi
exec "mvno-$SERVICE" "$@"
