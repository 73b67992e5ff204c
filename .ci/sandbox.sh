#!/usr/bin/env bash
# Installs bubblewrap, the mechanism of nanna's command sandbox (crates/nanna-sandbox), and
# checks that it can create the namespaces the sandbox uses. Debian 12 ships bubblewrap
# 0.8.0; it is not installed by default.
set -euo pipefail

if ! command -v bwrap >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq bubblewrap >/dev/null
fi
bwrap --version
# The same namespaces and mounts a read-only command gets (see sandbox.rs).
bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-net --die-with-parent \
    --new-session --cap-drop ALL --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp \
    -- sh -c 'exit 0'
echo "bubblewrap can create user, mount, PID, IPC and network namespaces"
