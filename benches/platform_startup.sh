#!/bin/sh
# Platform start-up and idle memory, as README's "Run a platform" reports them:
# `volttron` started on a fresh home, `vctl status` polled until it answers (the time
# from launch to that answer), then the platform's VmRSS and RssAnon (its private
# memory; the rest is file-backed: the binary's code, libc, libzmq) 2 s later. Seven runs.
#
#   cargo build --profile dist --bins && sh benches/platform_startup.sh
#   sh benches/platform_startup.sh --web     # with the web service on 127.0.0.1:0
#   PROFILE=release sh benches/platform_startup.sh   # the binaries of another profile
#
# `--web` starts it with `--bind-web-address http://127.0.0.1:0`; before reading the
# memory, the run checks that the process listens on a 127.0.0.1 TCP port (`ss`), and
# after it that `GET /discovery/` there answers (`curl`).
# `PERF_SMAPS=1` prints the last run's largest mappings (Rss and Anonymous, kB).
set -eu
bin=${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/${PROFILE:-dist}
web=
if [ "${1:-}" = "--web" ]; then
    web="--bind-web-address http://127.0.0.1:0"
fi
for run in 1 2 3 4 5 6 7; do
    home=$(mktemp -d)
    start=$(date +%s%N)
    # shellcheck disable=SC2086
    "$bin/volttron" --volttron-home "$home" -q $web &
    pid=$!
    until "$bin/vctl" --volttron-home "$home" status >/dev/null 2>&1; do :; done
    end=$(date +%s%N)
    sleep 2
    if [ -n "$web" ]; then
        port=$(ss -Hltnp | awk -v p="pid=$pid," 'index($0, p) && $4 ~ /^127\.0\.0\.1:/ {sub(/.*:/, "", $4); print $4; exit}')
        [ -n "$port" ] || { echo "the web service does not listen" >&2; exit 1; }
    fi
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
    threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
    # After the reading, so that the figure is of a service that has served nothing.
    [ -z "$web" ] || curl -fsS "http://127.0.0.1:$port/discovery/" >/dev/null
    echo "start_to_status_ms=$(( (end - start) / 1000000 )) idle_rss_kib=$rss rss_anon_kib=$anon threads=$threads"
    if [ "$run" = 7 ] && [ -n "${PERF_SMAPS:-}" ]; then
        awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6)}
             /^Rss:/ {rss[name] += $2}
             /^Anonymous:/ {anon[name] += $2}
             END {for (n in rss) if (rss[n] > 0) printf "%6d kB rss %6d kB anon  %s\n", rss[n], anon[n], n}' \
            "/proc/$pid/smaps" | sort -rn | head -25
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$home"
done
