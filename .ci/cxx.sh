#!/usr/bin/env bash
# Provision the header-only C++ test framework (doctest) for tests/test_cxx.py.
# Idempotent: installs Debian's doctest-dev only if its header is missing. Run as root.
set -euo pipefail
if [ ! -f /usr/include/doctest/doctest.h ]; then
    echo "[cxx.sh] installing doctest-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends doctest-dev >/dev/null
fi
