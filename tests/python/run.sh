#!/usr/bin/env bash
# Runs the real-client tests: the official MCP Python SDK against the built binary.
# Creates target/py-venv on first use (needs python3 with venv and access to PyPI).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv="$root/target/py-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --disable-pip-version-check -q -r tests/python/requirements.txt
# Build the binary with the same features as `cargo test --workspace` (dev-dependencies unify
# features), so after the Rust suites this is a no-op instead of a second build.
cargo test -q --workspace --no-run
export AIGW_BIN="$root/target/debug/azure-ai-gateway-mcp"
export AIGW_WASM_DIR="$root/target/wasm-plugins/wasm32-wasip2/release"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
