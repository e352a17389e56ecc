#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against this server's
# `sandbox --http`. The suite needs Node 22 or newer and the machines have Node 20, so Node 22
# is installed from the npm registry into target/conformance, next to the suite (once; later
# runs reuse it). Scenarios that need the suite's own reference server are listed, with the
# reason, in tests/conformance/baseline.yml; any other failure — or a listed scenario that
# starts passing — fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
suite_version=0.1.16
dir="$root/target/conformance"
if [ ! -x "$dir/node_modules/.bin/conformance" ] || ! grep -q "\"version\": \"$suite_version\"" \
    "$dir/node_modules/@modelcontextprotocol/conformance/package.json" 2>/dev/null; then
  mkdir -p "$dir"
  npm install --no-audit --no-fund --loglevel=error --prefix "$dir" node@22 "@modelcontextprotocol/conformance@$suite_version"
fi
export PATH="$dir/node_modules/.bin:$PATH"
echo "conformance suite $suite_version on node $(node --version)"

bin="${AIGW_BIN:-$root/target/debug/azure-ai-gateway-mcp}"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
touch "$work/config.toml"
AIGW_PLUGINS_DIR="$work/plugins" AIGW_CONFIG="$work/config.toml" AIGW_CACHE_DIR="$dir/cache" \
  AIGW_JOURNAL="$work/journal.jsonl" "$bin" sandbox --http "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.1
done
status=0
conformance server --url "http://127.0.0.1:$port/mcp" --expected-failures "$root/tests/conformance/baseline.yml" \
  -o "$work/results" >"$work/output.txt" 2>&1 || status=$?
sed -n '/=== SUMMARY/,$p' "$work/output.txt"
if [ "$status" -ne 0 ]; then
  echo "conformance: unexpected results (exit $status); full output:" >&2
  cat "$work/output.txt" >&2
  tail -50 "$work/server.log" >&2
fi
exit "$status"
