#!/usr/bin/env bash
# Installs the real consumers of `nanna-deploy export` that its tests run the exports with
# (crates/nanna-deploy/tests/export.rs, export_engines.rs):
#   - kubernetes-validate (PyPI), which ships the Kubernetes OpenAPI schemas and validates
#     manifests offline;
#   - docker-compose 1.29 and podman-compose 1.0.3 (Debian 12's packages).
# `podman kube play` comes with Podman (.ci/engines.sh).
set -euo pipefail

if ! command -v kubernetes-validate >/dev/null; then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
        kubernetes-validate==1.37.0
fi
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v podman-compose >/dev/null || need+=(podman-compose)
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi
echo "kubernetes-validate $(kubernetes-validate --version), $(docker-compose version --short 2>/dev/null || echo '?') (docker-compose), $(podman-compose version 2>/dev/null | grep -o 'podman-composer version.*' || echo 'podman-compose ?')"
