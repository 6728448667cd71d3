"""Fixtures for the autoscaler tests: moto's server over real HTTP.

Tests marked ``moto`` skip with a message when moto's server cannot start, unless
``TITUS_REQUIRE_MOTO=1`` makes that a failure.
"""
import os

import pytest


@pytest.fixture(scope="module")
def moto_url():
    """moto's server on 127.0.0.1 at a free port; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:  # any failure to start means: no moto here
        message = f"moto server could not start: {exc}"
        if os.environ.get("TITUS_REQUIRE_MOTO") == "1":
            pytest.fail(f"{message} (TITUS_REQUIRE_MOTO=1)")
        pytest.skip(message)
    yield f"http://{host}:{port}"
    server.stop()
