#!/usr/bin/env bash
# Gateway benchmarks against `edgelm serve` on loopback.
#
#   bench/serve/run.sh [throughput|load|all] [--build DIR] [--threads N] [--model GGUF]
#
# throughput: aggregate decode tokens/s at 1, 4, 8, 16 concurrent streams and p50/p95/p99 time to
#             first token (bench/serve/serve_bench.mjs), on a SmolLM2-135M-shaped Q8_0 model
#             synthesized once into ~/.cache/edgelm-bench/ (random weights, real shapes).
# load:       autocannon, 32 connections for 60 s on /v1/completions with stories260K: errors,
#             status codes, and the server's RSS before and after (memory must stay flat).
# Defaults: --build build/release, --threads 1 (the 135M model is too noisy at 2 threads here).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${1:-all}"
[[ $# -gt 0 ]] && shift
build="$repo/build/release"
threads=1
model=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench/serve/run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
edgelm="$build/apps/edgelm/edgelm"
[[ -x "$edgelm" ]] || { echo "bench/serve/run.sh: build $edgelm first" >&2; exit 2; }

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

# Starts `edgelm serve` on a free port; sets server_pid and port.
start_server() {
  local log
  log="$(mktemp)"
  "$edgelm" serve --port 0 --quiet "$@" 2>"$log" &
  server_pid=$!
  for _ in $(seq 1 300); do
    port="$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$log")"
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$log" >&2; exit 1; }
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

throughput() {
  if [[ -z "$model" ]]; then
    model="$HOME/.cache/edgelm-bench/smollm2-135m-q8_0.gguf"
    if [[ ! -f "$model" ]]; then
      mkdir -p "$(dirname "$model")"
      "$edgelm" synth --shape smollm2-135m --type q8_0 -o "$model"
    fi
  fi
  start_server -m "$model" --parallel 16 --queue 64 --ctx 512 --threads "$threads" --alias bench
  echo "edgelm serve, $(basename "$model"), $threads thread(s), 16 slots"
  node "$repo/bench/serve/serve_bench.mjs" "http://127.0.0.1:$port/v1" bench --streams 1,4,8,16
  stop_server
}

load() {
  local deps="$build/node_deps"
  if [[ ! -f "$deps/node_modules/autocannon/package.json" ]]; then
    npm install --no-audit --no-fund --prefix "$deps" autocannon >/dev/null
  fi
  local stories="$repo/../shared/models/stories260K/stories260K.gguf"
  start_server -m "$stories" --parallel 4 --queue 64 --ctx 512 --threads "$threads" --alias stories
  local body
  body="$(mktemp)"
  echo '{"model":"stories","prompt":"Once upon a time","max_tokens":16,"temperature":0}' >"$body"
  local url="http://127.0.0.1:$port/v1/completions"
  node "$deps/node_modules/autocannon/autocannon.js" -c 32 -d 5 -m POST -H 'Content-Type: application/json' \
    -i "$body" "$url" >/dev/null 2>&1  # warm-up
  local before after
  before="$(rss_kib "$server_pid")"
  node "$deps/node_modules/autocannon/autocannon.js" --json -c 32 -d 60 -m POST \
    -H 'Content-Type: application/json' -i "$body" "$url" 2>/dev/null >"$body.out"
  after="$(rss_kib "$server_pid")"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const codes = Object.entries(r.statusCodeStats ?? {}).map(([c, s]) => `${c}: ${s.count}`).join(", ");
    console.log(`load: 32 connections, 60 s: ${r.requests.total} requests (${r.requests.average.toFixed(1)}/s), ` +
                `latency p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms, errors ${r.errors}, timeouts ${r.timeouts}, ` +
                `non-2xx ${r.non2xx} [${codes}]`);
  ' "$body.out"
  echo "server RSS: ${before} KiB after warm-up, ${after} KiB after 60 s ($(( after - before )) KiB change)"
  rm -f "$body" "$body.out"
  stop_server
}

case "$mode" in
  throughput) throughput ;;
  load) load ;;
  all) throughput; load ;;
  *) echo "bench/serve/run.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
