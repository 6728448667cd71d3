"""Schemathesis over ``/openapi.json``: generated and mutated requests for every operation,
with a token. No answer may be a server error, and every answer must match the documented
status codes, content type and response schema.

``TITUS_FUZZ_EXAMPLES`` sets the examples per operation (default 80: over 2,000 cases for the
whole API); the run prints how many cases it sent.
"""
from __future__ import annotations

import os
import tempfile

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance,
                                               status_code_conformance)
from schemathesis.checks import not_a_server_error

from titus.master.app import create_app
from titus.master.auth import digest
from titus.master.config import MasterSettings

TOKEN = "fuzz-token"
EXAMPLES = int(os.environ.get("TITUS_FUZZ_EXAMPLES", "80"))
_STORE = tempfile.mkdtemp(prefix="titus-fuzz-")
# one token for every scope: an admin (writes anything) that is also an agent
TOKENS = os.path.join(_STORE, "tokens.yaml")
with open(TOKENS, "w") as _f:
    _f.write(f"tokens:\n  - name: fuzz\n    sha256: {digest(TOKEN)}\n"
             f"    scopes: [admin, agent]\n")
APP = create_app(MasterSettings(store_url=f"sqlite:///{_STORE}/fuzz.db", token_file=TOKENS,
                                submit_rate_per_sec=0), start_loop=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP,
                                        headers={"Authorization": f"Bearer {TOKEN}"})
# positive cases (valid by the schema) and negative ones (each breaking it somewhere)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
SENT = {"cases": 0, "operations": set()}
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance)


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(f"\nschemathesis: {SENT['cases']} cases over {len(SENT['operations'])} operations")
    if EXAMPLES >= 80:
        assert SENT["cases"] >= 2000


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
def test_api(case):
    SENT["cases"] += 1
    SENT["operations"].add(case.operation.label)
    if isinstance(case.body, dict) and isinstance(case.body.get("wait_ms"), int):
        case.body["wait_ms"] = min(case.body["wait_ms"], 20)  # a long poll, not a hang
    if case.operation.path == "/api/v3/observe":
        case.query = {**(case.query or {}), "snapshotOnly": "true"}  # a stream never ends
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS,
                           excluded_checks=[negative_data_rejection])


def test_every_operation_that_reads_a_body_declares_it():
    """Every POST and PUT reads a JSON body (``deps.read_body``): one the document does not
    declare is never fuzzed with a body, and its 408 and 415 answers go undocumented."""
    doc = APP.openapi()
    # writes whose whole input is the path and the query (a drain's deadlineSec)
    bodiless = {("put", "/api/v3/hosts/{host_id}/drain")}
    for path, ops in doc["paths"].items():
        for method in ("post", "put"):
            if method not in ops or (method, path) in bodiless:
                continue
            op = ops[method]
            assert "requestBody" in op, (method, path)
            assert {"400", "408", "413", "415"} <= set(op["responses"]), (method, path)
