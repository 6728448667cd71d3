"""IAM roles a job may ask for: by submitter and by capacity group; unconfigured, any."""
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from titus.master.api.errors import install_error_handlers
from titus.master.config import MasterSettings
from titus.master.errors import Forbidden
from titus.master.roles import ROLE_FIELD, check_role, role_refusal
from titus.master.validation import parse_job


def job(role=None, group=None):
    container = {"image": {"name": "alpine"}}
    if role is not None:
        container["securityProfile"] = {"iamRole": role}
    data = {"applicationName": "app", "container": container, "batch": {"size": 1}}
    if group is not None:
        data["capacityGroup"] = group
    return parse_job(data)


def settings(by_user=None, by_group=None) -> MasterSettings:
    return MasterSettings(iam_roles_by_user=by_user or {},
                          iam_roles_by_capacity_group=by_group or {})


def test_unconfigured_any_role_is_allowed():
    assert role_refusal(job("test-role"), "anonymous", MasterSettings()) is None  # the README job
    assert role_refusal(job("anything", "g"), "alice", MasterSettings()) is None


def test_a_job_without_a_role_is_never_refused():
    s = settings({"alice": []}, {"DEFAULT": []})
    assert role_refusal(job(), "alice", s) is None
    assert role_refusal(job(""), "alice", s) is None


def test_by_user_only_the_listed_roles():
    s = settings({"alice": ["role-a", "role-b"]})
    assert role_refusal(job("role-b"), "alice", s) is None
    message = role_refusal(job("role-x"), "alice", s)
    assert "'role-x'" in message and "'alice'" in message
    assert role_refusal(job("role-x"), "bob", s) is None  # bob is not restricted


def test_by_capacity_group_including_default():
    s = settings(by_group={"payments": ["pay-role"], "DEFAULT": ["basic"]})
    assert role_refusal(job("pay-role", "payments"), "alice", s) is None
    message = role_refusal(job("basic", "payments"), "alice", s)
    assert "'basic'" in message and "'payments'" in message
    assert role_refusal(job("basic"), "alice", s) is None  # no group: DEFAULT
    assert "'DEFAULT'" in role_refusal(job("pay-role"), "alice", s)
    # a group the map does not list is held to DEFAULT's list (naming a group is free)
    assert "'other'" in role_refusal(job("anything", "other"), "alice", s)
    assert role_refusal(job("basic", "other"), "alice", s) is None
    no_default = settings(by_group={"payments": ["pay-role"]})
    assert role_refusal(job("anything", "other"), "alice", no_default) is None


def test_both_configured_the_role_must_be_allowed_by_each():
    s = settings({"alice": ["role-a", "role-b"]}, {"g": ["role-b", "role-c"]})
    assert role_refusal(job("role-b", "g"), "alice", s) is None
    assert "group 'g'" in role_refusal(job("role-a", "g"), "alice", s)
    # naming a group that allows role-c does not widen what alice may take
    assert "user 'alice'" in role_refusal(job("role-c", "g"), "alice", s)
    assert role_refusal(job("role-c", "g"), "bob", s) is None  # bob: only the group's list


def test_wildcard_and_empty_lists():
    s = settings({"admin": ["*"], "nobody": []}, {"g": ["role-g"]})
    assert role_refusal(job("any-role"), "admin", s) is None
    assert role_refusal(job("role-g", "g"), "admin", s) is None
    assert role_refusal(job("any-role", "g"), "admin", s) is not None  # the group still holds
    assert role_refusal(job("role-g"), "nobody", s) is not None


def test_roles_are_compared_as_written():
    s = settings({"alice": ["role-a"]})
    arn = "arn:aws:iam::123456789012:role/role-a"
    assert role_refusal(job(arn), "alice", s) is not None
    assert role_refusal(job("Role-A"), "alice", s) is not None


def test_check_role_raises_forbidden_on_the_role_field():
    s = settings({"alice": ["role-a"]})
    check_role(job("role-a"), "alice", s)
    with pytest.raises(Forbidden) as caught:
        check_role(job("role-x"), "alice", s)
    assert caught.value.field == ROLE_FIELD and "'role-x'" in str(caught.value)


def test_role_maps_from_the_environment_are_json():
    s = MasterSettings.from_env({
        "TITUS_IAM_ROLES_BY_USER": '{"alice": ["role-a"], "admin": ["*"]}',
        "TITUS_IAM_ROLES_BY_CAPACITY_GROUP": '{"g": []}'})
    assert s.iam_roles_by_user == {"alice": ["role-a"], "admin": ["*"]}
    assert s.iam_roles_by_capacity_group == {"g": []}
    assert MasterSettings.from_env({}).iam_roles_by_user == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        MasterSettings.from_env({"TITUS_IAM_ROLES_BY_USER": "alice=role-a"})
    with pytest.raises(ValueError, match="iam_roles_by_capacity_group"):
        MasterSettings.from_env({"TITUS_IAM_ROLES_BY_CAPACITY_GROUP": '{"g": "role-a"}'})


def test_a_refusal_is_a_403_naming_the_role():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/submit")
    def submit():
        check_role(job("role-x"), "alice", settings({"alice": ["role-a"]}))

    r = TestClient(app).post("/submit")
    assert r.status_code == 403
    body = r.json()
    assert "'role-x'" in body["error"]
    assert body["problems"] == [{"field": ROLE_FIELD, "message": body["error"]}]


def test_a_group_the_map_does_not_list_is_held_to_default():
    from titus.master.config import MasterSettings
    from titus.master.roles import role_refusal
    from titus.master.validation import parse_job

    settings = MasterSettings(store_url="sqlite://",
                              iam_roles_by_capacity_group={"DEFAULT": ["role-a"], "g2": ["*"]})
    job = {"applicationName": "x", "container": {"image": {"name": "b"},
                                                 "securityProfile": {"iamRole": "role-c"}},
           "batch": {"size": 1}}
    assert role_refusal(parse_job({**job, "capacityGroup": "no-such-group"}), "bob", settings)
    assert role_refusal(parse_job({**job, "capacityGroup": "g2"}), "bob", settings) is None
