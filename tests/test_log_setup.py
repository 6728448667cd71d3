"""Per-request HTTP client logs (an agent's heartbeat every second) only at DEBUG."""
import logging

from titus.log_setup import quiet_http_clients


def test_http_client_requests_are_logged_only_at_debug(caplog):
    try:
        quiet_http_clients("INFO")
        with caplog.at_level(logging.INFO):
            logging.getLogger("httpx").info("HTTP Request: POST /api/v3/agents/a/heartbeat")
        assert "heartbeat" not in caplog.text
        quiet_http_clients("debug")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
    finally:
        logging.getLogger("httpx").setLevel(logging.NOTSET)
