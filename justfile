# Convenience recipes (https://github.com/casey/just). Each is one command you can also type.

# Run the MCP server against the local emulator (stdio).
sandbox *ARGS:
    cargo run --release -- sandbox {{ARGS}}

# The whole test suite, as CI runs it.
test:
    scripts/test.sh

# Only the Rust tests.
test-rust:
    cargo test --workspace

# Only the real-client tests (official MCP Python SDK).
test-python:
    tests/python/run.sh

# Build the example plugin and check it.
example-plugin:
    cargo build --manifest-path plugins/Cargo.toml -p service-info --target wasm32-wasip2 --release
    cargo run --release -- plugins check plugins/target/wasm32-wasip2/release/service_info.wasm

# Host benchmarks (release): startup, per-call CPU, throughput, memory.
bench:
    cargo run --release -p azure-ai-gateway-mcp --example bench_host

# Emulator and KQL benchmarks (release).
bench-emulator:
    cargo run --release -p aigw-emulator --example bench_arm
    cargo run --release -p aigw-kql --example bench_kql

fmt:
    cargo fmt --all
    cargo fmt --manifest-path plugins/Cargo.toml --all
