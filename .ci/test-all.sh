#!/usr/bin/env bash
# Runs every test of Nanna Coder on a fresh Debian 12 machine (as root), installing and
# starting what the tests need:
#   - Podman and Docker Engine (real engines, own sockets and storage)      .ci/engines.sh
#   - a real llama.cpp server with a 135M-parameter model (OpenAI API)      .ci/llama-server.sh
#   - the real MCP servers (npm) and the Python MCP SDK (PyPI)               .ci/mcp-servers.sh
#   - Nix (Debian's nix-bin) for the flake/module checks                     .ci/nix-checks.sh
#   - bubblewrap, the command sandbox's mechanism                            .ci/sandbox.sh
#   - kubernetes-validate, docker-compose, podman-compose (export consumers) .ci/export-consumers.sh
# then: rustfmt, clippy (-D warnings), the whole Cargo test suite, the Nix checks.
#
# With CI=true (or NANNA_TEST_REQUIRE=1) a missing engine or inference server fails the run
# instead of skipping the tests that need it.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
export NANNA_TEST_DIR=${NANNA_TEST_DIR:-/run/nanna-test}

step() { printf '\n==> %s\n' "$*"; }
# Free disk at each stage, so a run that fills the disk says where (build, images, engines).
disk() { df -h --output=avail,size,target / /var/lib /tmp 2>/dev/null | awk 'NR == 1 || !seen[$3]++ { print "    " $0 }'; }

if [ "${CI:-}" = true ] || [ "${NANNA_TEST_REQUIRE:-}" = 1 ]; then
    # A clean build once: incremental state would only take disk.
    export CARGO_INCREMENTAL=0
    export NANNA_TEST_REQUIRE_ENGINES=1 NANNA_TEST_REQUIRE_LLAMA=1 NANNA_TEST_REQUIRE_SANDBOX=1 NANNA_TEST_REQUIRE_MCP=1
fi

cleanup() {
    "$root/.ci/llama-server.sh" stop || true
    "$root/.ci/engines.sh" stop || true
}
if [ "${NANNA_KEEP_SERVICES:-}" != 1 ]; then
    trap cleanup EXIT
fi

step "disk at start"
disk

step "system packages"
need=()
command -v curl >/dev/null || need+=(curl)
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

step "sandbox (bubblewrap)"
"$root/.ci/sandbox.sh"

step "inference server (background)"
mkdir -p "$NANNA_TEST_DIR"
"$root/.ci/llama-server.sh" start >"$NANNA_TEST_DIR/llama-setup.log" 2>&1 &
llama_setup=$!
"$root/.ci/mcp-servers.sh" install >"$NANNA_TEST_DIR/mcp-setup.log" 2>&1 & # tests wait on mcp.pending

step "container engines"
"$root/.ci/engines.sh" start
"$root/.ci/export-consumers.sh"
# shellcheck disable=SC1091
source "$NANNA_TEST_DIR/env.sh"

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "waiting for the inference server"
if wait "$llama_setup"; then
    cat "$NANNA_TEST_DIR/llama-setup.log"
    # shellcheck disable=SC1091
    source "$NANNA_TEST_DIR/llama.env"
else
    cat "$NANNA_TEST_DIR/llama-setup.log" >&2
    if [ "${NANNA_TEST_REQUIRE_LLAMA:-}" = 1 ]; then
        echo "the llama.cpp server could not be started; the real-server tests cannot run" >&2
        exit 1
    fi
fi

step "disk after the build"
disk

step "cargo test"
cargo_log="$NANNA_TEST_DIR/cargo-test.log"
cargo_rc=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$cargo_log" || cargo_rc=$?

step "disk after cargo test"
disk

step "nix checks"
nix_log="$NANNA_TEST_DIR/nix-checks.log"
nix_rc=0
"$root/.ci/nix-checks.sh" 2>&1 | tee "$nix_log" || nix_rc=$?

# One closing line with the totals of both runners.
read -r passed failed < <(
    {
        sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed.*/\1 \2/p' "$cargo_log"
        sed -n 's/^nix-checks: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$nix_log"
    } | awk '{p += $1; f += $2} END {print p + 0, f + 0}'
)
if [ "$cargo_rc" -ne 0 ] || [ "$nix_rc" -ne 0 ]; then
    echo "FAILED: cargo test exit $cargo_rc, nix checks exit $nix_rc" >&2
    echo "tests: $passed passed, $failed failed"
    exit 1
fi
echo "tests: $passed passed, $failed failed"
