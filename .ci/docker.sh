#!/usr/bin/env bash
# Provision a Docker engine and the local test image for the Docker tests.
#
# Idempotent and quick when everything is already in place: installs docker.io and
# busybox-static only if missing, starts dockerd (vfs storage) only if no engine answers,
# and imports the test image only if it is absent. There is no registry: nothing is pulled.
# Run as root. Environment:
#   TITUS_TEST_IMAGE   image to build (default titus-test/busybox:latest)
#   TITUS_DOCKERD_LOG  dockerd log file (default /var/log/titus-dockerd.log)
set -euo pipefail

IMAGE="${TITUS_TEST_IMAGE:-titus-test/busybox:latest}"
LOG="${TITUS_DOCKERD_LOG:-/var/log/titus-dockerd.log}"
PIDFILE=/var/run/titus-dockerd.pid
SOCK=/var/run/docker.sock

log() { echo "[docker.sh] $*" >&2; }

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    # The image needs a statically linked busybox (the rootfs holds no libc).
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" \
        || missing+=(busybox-static)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

start_dockerd() {
    if engine_up; then return; fi
    # A stale pidfile from a dead daemon would stop dockerd from starting.
    if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE"; fi
    if [ ! -f "$PIDFILE" ]; then
        log "starting dockerd (log: $LOG)"
        nohup dockerd --storage-driver=vfs --pidfile="$PIDFILE" --host="unix://$SOCK" \
            >>"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 120); do
        if [ -S "$SOCK" ] && engine_up; then log "dockerd is up"; return; fi
        sleep 0.5
    done
    log "dockerd did not come up; last log lines:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
}

build_image() {
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then return; fi
    log "importing $IMAGE from static busybox"
    local root
    root="$(mktemp -d)"
    mkdir -p "$root"/{bin,tmp,proc,sys,dev,etc,root}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # Every applet busybox was built with (sh, sleep, echo, cat, dd, yes, head, wget, nc, ...).
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
    echo "root:x:0:" >"$root/etc/group"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
    rm -rf "$root"
    log "imported $IMAGE"
}

install_packages
start_dockerd
build_image
