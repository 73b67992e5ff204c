#!/usr/bin/env bash
# Installs (when missing) and starts the two real container engines the tests use:
#   - Podman 4.x's Docker-compatible API service,
#   - Docker Engine (dockerd),
# each on its own socket, with state of its own, and writes an env file for the tests.
#
# Usage: .ci/engines.sh start [podman|docker]|stop|status
# Env:   NANNA_TEST_DIR   sockets, pids and the env file   (default /run/nanna-test)
#        NANNA_TEST_STATE engine storage (must be on ext4/xfs for overlay) (default /var/lib/nanna-test)
#
# After `start`, `source $NANNA_TEST_DIR/env.sh` exports NANNA_TEST_PODMAN_SOCKET,
# NANNA_TEST_DOCKER_SOCKET, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF (so the podman CLI
# shares the service's storage) and DOCKER_HOST (for the docker CLI).
set -euo pipefail

dir=${NANNA_TEST_DIR:-/run/nanna-test}
state=${NANNA_TEST_STATE:-/var/lib/nanna-test}

log() { printf '[engines] %s\n' "$*" >&2; }

# The podman CLI, always local: with CONTAINER_HOST (or CONTAINER_CONNECTION) set it turns
# into a remote client, and `podman system service` then refuses its socket argument
# ("accepts at most 1 arg(s)").
podman_local() { env -u CONTAINER_HOST -u CONTAINER_CONNECTION podman "$@"; }

apt_install() {
    if [ -z "${_apt_updated:-}" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

install_engines() {
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
        log "installing podman"
        apt_install podman runc busybox-static uidmap
    fi
    if ! command -v dockerd >/dev/null; then
        log "installing docker.io"
        apt_install --no-install-recommends docker.io
    fi
}

write_podman_config() {
    mkdir -p "$dir" "$state/podman"
    # overlay needs a real filesystem; fall back to vfs on tmpfs/overlayfs.
    local fstype driver=overlay
    fstype=$(stat -f -c %T "$state/podman")
    case "$fstype" in tmpfs|overlayfs) driver=vfs ;; esac
    local nofile
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "$driver"
runroot = "$dir/podman-run"
graphroot = "$state/podman"
EOF
}

wait_socket() { # path pid name
    local i
    for i in $(seq 1 100); do
        if curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$2" 2>/dev/null; then
            log "$3 exited during start-up; its log:"
            tail -n 30 "$dir/$3.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "$3 did not answer on $1 within 10 s; its log:"
    tail -n 30 "$dir/$3.log" >&2 || true
    return 1
}

start_podman() {
    if [ -S "$dir/podman.sock" ] && curl -sf --unix-socket "$dir/podman.sock" http://d/_ping >/dev/null 2>&1; then
        log "podman service already up"
        return 0
    fi
    write_podman_config
    rm -f "$dir/podman.sock"
    CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
        setsid env -u CONTAINER_HOST -u CONTAINER_CONNECTION \
        podman system service --time=0 "unix://$dir/podman.sock" >"$dir/podman.log" 2>&1 &
    echo $! >"$dir/podman.pid"
    wait_socket "$dir/podman.sock" "$(cat "$dir/podman.pid")" podman
    log "podman $(podman_local --version | awk '{print $3}') API on $dir/podman.sock"
}

# A dockerd killed hard leaves its pid file, and a new one refuses to start beside it
# ("pid file found, ensure docker is not running"), also while the old one is still
# exiting: wait for it to go, then remove the file.
clear_stale_pidfile() {
    [ -f "$dir/docker.pid" ] || return 0
    local old i
    old=$(cat "$dir/docker.pid")
    if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = dockerd ]; then
        log "waiting for the previous dockerd (pid $old) to exit"
        for i in $(seq 1 150); do
            [ "$(cat "/proc/$old/comm" 2>/dev/null)" = dockerd ] || break
            sleep 0.1
        done
        if [ "$(cat "/proc/$old/comm" 2>/dev/null)" = dockerd ]; then
            log "the previous dockerd (pid $old) still runs and does not answer on $dir/docker.sock; stop it first"
            return 1
        fi
    fi
    rm -f "$dir/docker.pid"
}

start_docker() {
    if [ -S "$dir/docker.sock" ] && curl -sf --unix-socket "$dir/docker.sock" http://d/_ping >/dev/null 2>&1; then
        log "dockerd already up"
        return 0
    fi
    mkdir -p "$dir" "$state/docker"
    rm -f "$dir/docker.sock"
    clear_stale_pidfile || return 1
    setsid dockerd --data-root "$state/docker" --exec-root "$dir/docker-exec" \
        -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" >"$dir/docker.log" 2>&1 &
    local pid=$!
    wait_socket "$dir/docker.sock" "$pid" docker
    log "dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) on $dir/docker.sock"
}

write_env() {
    cat >"$dir/env.sh" <<EOF
export NANNA_TEST_PODMAN_SOCKET=$dir/podman.sock
export NANNA_TEST_DOCKER_SOCKET=$dir/docker.sock
export CONTAINERS_CONF=$dir/containers.conf
export CONTAINERS_STORAGE_CONF=$dir/storage.conf
export DOCKER_HOST=unix://$dir/docker.sock
EOF
}

stop_engines() {
    # Remove what the tests left (they label their objects), then stop the services.
    if [ -S "$dir/podman.sock" ]; then
        CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
            podman_local rm -af -t 1 >/dev/null 2>&1 || true
        CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
            podman_local pod rm -af >/dev/null 2>&1 || true
    fi
    local f
    for f in podman docker; do
        if [ -f "$dir/$f.pid" ]; then
            kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
            rm -f "$dir/$f.pid"
        fi
    done
}

case "${1:-start}" in
start)
    install_engines
    command -v curl >/dev/null || apt_install curl
    case "${2:-both}" in
    podman) start_podman ;;
    docker) start_docker ;;
    *) start_podman; start_docker ;;
    esac
    write_env
    ;;
stop) stop_engines ;;
status)
    for s in podman docker; do
        if curl -sf --unix-socket "$dir/$s.sock" http://d/version >/dev/null 2>&1; then
            echo "$s: up ($dir/$s.sock)"
        else
            echo "$s: down"
        fi
    done
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
