#!/bin/sh
# Platform start-up and idle memory, as README's "Run a platform" reports them:
# `volttron` started on a fresh home, `vctl status` polled until it answers (the time
# from launch to that answer), then the platform's VmRSS 2 s later. Seven runs.
#
#   cargo build --release --bins && sh benches/platform_startup.sh
set -eu
bin=${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release
for _ in 1 2 3 4 5 6 7; do
    home=$(mktemp -d)
    start=$(date +%s%N)
    "$bin/volttron" --volttron-home "$home" -q &
    pid=$!
    until "$bin/vctl" --volttron-home "$home" status >/dev/null 2>&1; do :; done
    end=$(date +%s%N)
    sleep 2
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    echo "start_to_status_ms=$(( (end - start) / 1000000 )) idle_rss_kib=$rss"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$home"
done
