#!/usr/bin/env bash
# Provision the header-only C++ test framework (doctest) for tests/test_cxx.py.
# Idempotent: installs Debian's doctest-dev only if its header is missing (as root, or
# through sudo when run as another user).
set -euo pipefail
if [ ! -f /usr/include/doctest/doctest.h ]; then
    echo "[cxx.sh] installing doctest-dev" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends doctest-dev >/dev/null
fi
