#!/usr/bin/env bash
# Installs the real MCP servers and client the nanna-mcp tests run against, from their
# registries, into a cache that survives runs:
#   - npm:  @modelcontextprotocol/server-filesystem and @modelcontextprotocol/server-everything
#           (the reference servers; Node and npm from Debian's packages when missing)
#   - PyPI: mcp (the official Python SDK: servers the tests write, and the client that drives
#           `nanna mcp-server`), in a virtualenv
#
# Usage: .ci/mcp-servers.sh install      (test-all.sh runs it in the background)
# Env:   NANNA_TEST_DIR   where mcp.env is written (default /run/nanna-test)
#        NANNA_MCP_CACHE  the install cache (default /var/lib/nanna-test/mcp)
# While it runs, $NANNA_TEST_DIR/mcp.pending exists; at the end $NANNA_TEST_DIR/mcp.env
# exports NANNA_TEST_MCP_FILESYSTEM, NANNA_TEST_MCP_EVERYTHING (the servers' executables),
# NANNA_TEST_MCP_PYTHON (a python3 with `mcp`) and NANNA_TEST_MCP_VERSIONS. The tests read
# the variables, or else that file (waiting while the install is pending); without them
# they skip with a message unless NANNA_TEST_REQUIRE_MCP=1.
set -euo pipefail

dir=${NANNA_TEST_DIR:-/run/nanna-test}
cache=${NANNA_MCP_CACHE:-/var/lib/nanna-test/mcp}
FS_VERSION=2026.8.31
EVERYTHING_VERSION=2026.8.31
PY_MCP_VERSION=2.3.0

log() { printf '[mcp] %s\n' "$*" >&2; }

apt_install() {
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

# The version of an installed npm package, or nothing.
npm_version() {
    local manifest="$cache/npm/node_modules/$1/package.json"
    [ -f "$manifest" ] && node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest"
}

install() {
    mkdir -p "$dir" "$cache"
    rm -f "$dir/mcp.env"
    touch "$dir/mcp.pending"
    trap 'rm -f "$dir/mcp.pending"' EXIT

    local need=()
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]} (Debian)"
        apt_install "${need[@]}"
    fi

    if [ "$(npm_version @modelcontextprotocol/server-filesystem)" != "$FS_VERSION" ] ||
        [ "$(npm_version @modelcontextprotocol/server-everything)" != "$EVERYTHING_VERSION" ]; then
        log "installing server-filesystem $FS_VERSION and server-everything $EVERYTHING_VERSION (npm)"
        npm install --prefix "$cache/npm" --no-audit --no-fund --loglevel=error \
            "@modelcontextprotocol/server-filesystem@$FS_VERSION" \
            "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
    fi

    local py="$cache/py/bin/python3"
    if ! "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$PY_MCP_VERSION')" 2>/dev/null; then
        log "installing mcp $PY_MCP_VERSION (PyPI)"
        rm -rf "$cache/py"
        python3 -m venv "$cache/py"
        "$cache/py/bin/pip" install -q --disable-pip-version-check "mcp==$PY_MCP_VERSION" >&2
    fi

    local fs="$cache/npm/node_modules/.bin/mcp-server-filesystem"
    local everything="$cache/npm/node_modules/.bin/mcp-server-everything"
    for bin in "$fs" "$everything" "$py"; do
        [ -x "$bin" ] || { log "missing after install: $bin"; exit 1; }
    done
    local versions
    versions="server-filesystem $(npm_version @modelcontextprotocol/server-filesystem), server-everything $(npm_version @modelcontextprotocol/server-everything), python mcp $("$py" -c 'import importlib.metadata as m; print(m.version("mcp"))'), node $(node --version)"
    cat >"$dir/mcp.env.part" <<EOF
export NANNA_TEST_MCP_FILESYSTEM=$fs
export NANNA_TEST_MCP_EVERYTHING=$everything
export NANNA_TEST_MCP_PYTHON=$py
export NANNA_TEST_MCP_VERSIONS="$versions"
EOF
    mv "$dir/mcp.env.part" "$dir/mcp.env"
    log "ready: $versions"
}

case "${1:-}" in
install) install ;;
*)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
