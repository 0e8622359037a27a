#!/bin/sh
# A stand-in application: it reads its config at start and again on SIGHUP,
# like nginx or pgbouncer do.
conf="$1"
trap 'echo "app: SIGHUP received, config now: $(cat "$conf")"' HUP
trap 'echo "app: SIGTERM received, exiting"; exit 0' TERM
echo "app: started with config: $(cat "$conf")"
while :; do sleep 0.1; done
