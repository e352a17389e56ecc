#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this).
# Formatting, lints, the Rust test suites (host, emulator, KQL, plugin libraries), the
# real-client tests with the official MCP Python SDK, and the official MCP conformance suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The wasm32-wasip2 standard library is a separate rustup component (no-op when present).
if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-wasip2 >/dev/null
fi
plugins_target="$root/target/wasm-plugins"

echo "== format"
cargo fmt --all --check
cargo fmt --manifest-path plugins/Cargo.toml --all --check

echo "== lints"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path plugins/Cargo.toml --workspace --target wasm32-wasip2 --target-dir "$plugins_target" -- -D warnings

echo "== plugin libraries (native unit tests)"
cargo test --manifest-path plugins/Cargo.toml --target-dir "$root/target/plugins-native" \
  -p aigw-policy-xml $( [ -d plugins/quota ] && echo "-p quota" )

echo "== host, emulator, KQL"
cargo test --workspace

echo "== the official MCP conformance suite, and real MCP clients (Python SDK), side by side"
# Both only drive the already-built binary; they do not contend for the build.
scripts/conformance.sh >"$root/target/conformance.log" 2>&1 &
conformance=$!
python_status=0
tests/python/run.sh >"$root/target/python-tests.log" 2>&1 || python_status=$?
conformance_status=0
wait "$conformance" || conformance_status=$?
echo "== conformance"
cat "$root/target/conformance.log"
echo "== real MCP client (Python SDK)"
cat "$root/target/python-tests.log"
[ "$conformance_status" -eq 0 ] || { echo "the conformance suite failed" >&2; exit "$conformance_status"; }
exit "$python_status"
