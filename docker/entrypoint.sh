#!/bin/sh
# Container entrypoint: bring the schema up to date, then run the daemon in the foreground.
#
# Extra arguments go to `newsfold run` (e.g. `--once`). NEWSFOLD_HTTP__LISTEN sets where
# /healthz, /readyz and /metrics are served (the image sets 0.0.0.0:8080).
set -eu

listen="${NEWSFOLD_HTTP__LISTEN:-0.0.0.0:8080}"

# Several replicas may start together (`--scale newsfold=3`) and race to migrate; the
# loser fails on an object the winner just created and succeeds on retry (a no-op).
attempt=1
until newsfold db upgrade; do
    if [ "$attempt" -ge 5 ]; then
        echo "entrypoint: database migration failed after $attempt attempts" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    sleep 2
done

# exec: the daemon becomes PID 1's child-free replacement and receives SIGTERM directly.
exec newsfold run --http "$listen" "$@"
