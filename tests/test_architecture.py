"""The shape of the control plane, checked on its source: who may import, lock and write what."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "titus"


def sources(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("path", sources("."), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_into_anothers_private_members(path):
    text = path.read_text()
    assert not re.search(r"\bmaster\._", text)
    # obj._name where obj is not self/cls (SQLAlchemy's Row._mapping is public API)
    bad = [m.group(0) for m in re.finditer(r"\b(?!self\b|cls\b|titus\b)[a-z_][a-z0-9_]*\._[a-z]\w*",
                                            text) if not m.group(0).endswith("._mapping")]
    assert bad == []


@pytest.mark.parametrize("path", sources("master/api"), ids=lambda p: p.name)
def test_the_rest_layer_never_takes_a_lock(path):
    assert ".lock" not in path.read_text()


@pytest.mark.parametrize("path", sources("master"), ids=lambda p: p.name)
def test_the_master_does_not_import_the_agent(path):
    assert not [m for m in imported(path) if m.startswith("titus.agent")]


@pytest.mark.parametrize("path", sources("autoscale"), ids=lambda p: p.name)
def test_the_autoscaler_sees_only_the_masters_facade(path):
    allowed = {"titus.master.master", "titus.master.master.Master"}
    assert not [m for m in imported(path) if m.startswith("titus.master") and m not in allowed]


@pytest.mark.parametrize("path", sources("master") + sources("autoscale") + sources("agent"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_ledger_and_the_store_open_write_transactions(path):
    if path.name in ("ledger.py", "store.py") or "migrations" in path.parts:
        return
    text = path.read_text()
    assert ".transaction()" not in text and "engine.begin()" not in text
    # the lease is what the fence checks: its own transactions are the only unfenced ones
    assert ".unfenced()" not in text or path.name == "lease.py"


def test_one_launch_order_type():
    names = {p.name for p in ROOT.rglob("*.py")
             if re.search(r"^class (LaunchSpec|LaunchOrder|Order)\b", p.read_text(), re.M)}
    assert names == {"protocol.py"}


@pytest.mark.parametrize("path", sources("master") + sources("autoscale"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_ledger_sets_job_and_task_fields(path):
    if path.name == "ledger.py":
        return
    sets = re.findall(r"\b(?:task|job|t|j)\.([a-z_]+) = ", path.read_text())
    assert [f for f in sets if not f.endswith("_cache")] == []


# a path that names something which need not exist: PUT creates the group, and a heartbeat of
# an unknown agent is answered "register again"
NO_404 = {("put", "/api/v3/capacityGroups/{name}"), ("post", "/api/v3/agents/{agent_id}/heartbeat")}


def test_every_operation_documents_its_answers():
    """Each operation of /openapi.json documents its success and the errors it can give, in
    the one error shape: bodies can be bad (400) or too large (413), mutations need a token
    (401) and a writable store (503), a path names something that may not exist (404)."""
    from titus.master.app import create_app
    from titus.master.config import MasterSettings

    doc = create_app(MasterSettings(store_url="sqlite://"), start_loop=False).openapi()
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            answers = set(op["responses"])
            need = {"2xx"}
            if "requestBody" in op:
                need |= {"400", "413"}
            if method in ("post", "put", "delete", "patch"):
                need |= {"401", "503"}
            if "{" in path and (method, path) not in NO_404:
                need.add("404")
            if op.get("parameters"):
                need.add("400")
            have = {a if not a.startswith("2") else "2xx" for a in answers}
            if not need <= have:
                missing.append(f"{method.upper()} {path}: {sorted(need - have)}")
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = str(answer.get("content", {}))
                    if "ErrorOut" not in ref:
                        missing.append(f"{method.upper()} {path} {code}: not the error shape")
    assert not missing, "\n".join(missing)
