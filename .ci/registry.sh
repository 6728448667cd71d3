#!/usr/bin/env bash
# Provision Debian's docker-registry (the Distribution registry, `docker-registry` binary) for
# the image-pull tests. Idempotent: installs the package only if the binary is missing, and
# stops the system service the package may start (each test starts its own registry process
# on a free loopback port with a temporary config; dockerd lets 127.0.0.0/8 registries speak
# plain HTTP by default). Run as root.
set -euo pipefail

log() { echo "[registry.sh] $*" >&2; }

if ! command -v docker-registry >/dev/null 2>&1; then
    log "installing docker-registry"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi
# the package's own service (port 5000) is not used by the tests: keep it from holding a port
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
fi
command -v docker-registry >/dev/null
log "docker-registry is installed at $(command -v docker-registry)"
