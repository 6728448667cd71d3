"""The job model accepts what real Titus clients send, and echoes what it does not act on."""
import json

import pytest

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.master.model_constraints import to_engine
from titus.master.validation import SpecError, parse_job

# The example job of Netflix/titus-control-plane's README, exactly as it stands there.
README_JOB = """{
    "applicationName": "localtest",
    "owner": {"teamEmail": "me@me.com"},
    "container": {
      "image": {"name": "alpine", "tag": "latest"},
      "entryPoint": ["/bin/sleep", "1h"],
      "securityProfile": {"iamRole": "test-role", "securityGroups": ["sg-test"]}
    },
    "batch": {
      "size": 1,
      "runtimeLimitSec": "3600",
      "retryPolicy":{"delayed": {"delayMs": "1000", "retries": 3}}
    }
  }"""


def test_readme_example_is_accepted_as_it_stands():
    job = parse_job(json.loads(README_JOB))
    assert job.applicationName == "localtest"
    assert job.batch.runtimeLimitSec == 3600
    assert job.batch.retryPolicy.delayed.delayMs == 1000
    assert job.container.securityProfile.iamRole == "test-role"
    assert job.container.image.reference() == "alpine:latest"


def test_int64_strings_are_read_as_numbers_and_echoed_as_strings():
    job = parse_job(json.loads(README_JOB))
    wire = job.wire()
    assert wire["batch"]["runtimeLimitSec"] == "3600"
    assert wire["batch"]["retryPolicy"]["delayed"]["delayMs"] == "1000"
    # 32-bit fields stay numbers
    assert wire["batch"]["size"] == 1


def test_unknown_titus_fields_are_kept_and_echoed():
    data = json.loads(README_JOB)
    data["jobGroupInfo"] = {"stack": "main", "detail": "x", "sequence": "001"}
    data["disruptionBudget"] = {"selfManaged": {"relocationTimeMs": "60000"}}
    data["container"]["resources"] = {"cpu": 2, "memoryMB": 1024, "efsMounts": [],
                                      "allocateIP": True, "shmSizeMB": 64}
    data["container"]["containerAttributes"] = {"titusParameter.agent.x": "1"}
    data["batch"]["retryPolicy"]["delayed"]["initialDelayMs"] = "5"
    wire = parse_job(data).wire()
    assert wire["jobGroupInfo"] == data["jobGroupInfo"]
    assert wire["disruptionBudget"] == data["disruptionBudget"]
    assert wire["container"]["resources"]["allocateIP"] is True
    assert wire["container"]["resources"]["shmSizeMB"] == 64
    assert wire["container"]["containerAttributes"] == {"titusParameter.agent.x": "1"}


def test_digest_image_and_defaults():
    data = json.loads(README_JOB)
    data["container"]["image"] = {"name": "alpine", "digest": "sha256:abc"}
    job = parse_job(data)
    assert job.container.image.reference() == "alpine@sha256:abc"
    assert job.container.resources.cpu == 1.0 and job.container.resources.memoryMB == 512


def test_service_job_with_health_check_and_grace():
    data = {"applicationName": "svc", "container": {
        "image": {"name": "nginx", "tag": "1"},
        "healthCheck": {"command": ["true"], "intervalSec": 2, "timeoutSec": 1, "retries": 2},
        "killGracePeriodSeconds": 3},
        "service": {"capacity": {"min": "1", "desired": "2", "max": "5"},
                    "retryPolicy": {"exponentialBackOff": {"initialDelayMs": "100",
                                                           "maxDelayIntervalMs": "1000",
                                                           "retries": 5}}}}
    job = parse_job(data)
    assert job.service.capacity.desired == 2
    assert job.container.healthCheck.command == ["true"]
    assert job.container.killGracePeriodSeconds == 3


@pytest.mark.parametrize("name", ["#{7*7}", "${jndi:ldap://x/a}", "{0}", "%s%n",
                                  "javax.el.ELProcessor"])
def test_template_like_constraint_names_are_refused_and_quoted_literally(name):
    data = json.loads(README_JOB)
    data["container"]["hardConstraints"] = {"constraints": {name: "true"}}
    with pytest.raises(SpecError) as err:
        parse_job(data)
    problem = err.value.problems[0]
    assert problem.field == "container.hardConstraints.constraints"
    assert problem.value == name  # the very text, as data
    assert json.dumps(name) in problem.message
    assert "49" not in problem.message  # nothing evaluated


def test_constraint_names_are_case_insensitive_and_map_to_engine_constraints():
    data = json.loads(README_JOB)
    data["container"]["hardConstraints"] = {"constraints": {
        "UniqueHost": "true", "exclusivehost": "false", "availabilityZone": "us-east-1a",
        "machineType": "m5.large,m5.xlarge", "machineId": "i-1"}}
    data["container"]["softConstraints"] = {"constraints": {"ZoneBalance": True}}
    job = parse_job(data)
    hard = to_engine(job.container.hardConstraints.constraints, zone_count=3)
    assert hard == [UniqueHostAttr("hostname"), HostAttrValue("zone", "us-east-1a"),
                    HostAttrValue("instance_type", values=["m5.large", "m5.xlarge"]),
                    HostAttrValue("instance_id", "i-1")]
    soft = to_engine(job.container.softConstraints.constraints, zone_count=3)
    assert soft == [BalancedHostAttr("zone", 3)]
    assert to_engine({"exclusiveHost": "true"}, 1) == [ExclusiveHost()]


def test_nulls_mean_unset_and_map_values_become_text():
    data = json.loads(README_JOB)
    data["capacityGroup"] = None
    data["container"]["command"] = None
    data["container"]["env"] = {"RETRIES": 3, "DEBUG": True}
    data["attributes"] = {"n": 1.5}
    job = parse_job(data)
    assert job.container.command == [] and job.capacityGroup == ""
    assert job.container.env == {"RETRIES": "3", "DEBUG": "true"}
    assert job.attributes == {"n": "1.5"}


def test_a_full_titus_descriptor_with_many_unhandled_fields():
    data = {
        "owner": {"teamEmail": "team@example.com"}, "applicationName": "myapp",
        "capacityGroup": "myapp", "jobGroupInfo": {"stack": "test", "detail": "", "sequence": "v001"},
        "attributes": {"source": "spinnaker"},
        "container": {
            "resources": {"cpu": 2, "gpu": 0, "memoryMB": "4096", "diskMB": "10000",
                          "networkMbps": "128", "allocateIP": True, "efsMounts": [],
                          "shmSizeMB": 64},
            "securityProfile": {"securityGroups": ["sg-1", "sg-2"], "iamRole": "arn:aws:iam::1:role/x",
                                "attributes": {}},
            "image": {"name": "org/app", "digest": "sha256:0123"},
            "attributes": {"titusParameter.agent.assignIPv6Address": "true"},
            "entryPoint": ["/run.sh"], "command": ["--port", "8080"], "env": {"A": "b"},
            "softConstraints": {"constraints": {"ZoneBalance": "true"}, "expression": ""},
            "hardConstraints": {"constraints": {}},
            "experimental": {"any": "thing"}},
        "disruptionBudget": {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 95},
                             "rateUnlimited": {}, "timeWindows": [], "containerHealthProviders": []},
        "networkConfiguration": {"networkMode": "Ipv6AndIpv4"},
        "service": {"capacity": {"min": "1", "desired": "2", "max": "3"}, "enabled": True,
                    "retryPolicy": {"exponentialBackOff": {"initialDelayMs": "1000",
                                                           "maxDelayIntervalMs": "60000",
                                                           "retries": 4294967295}},
                    "migrationPolicy": {"selfManaged": {}}, "serviceJobProcesses": {}},
    }
    job = parse_job(data)
    wire = job.wire()
    assert wire["disruptionBudget"] == data["disruptionBudget"]
    assert wire["service"]["migrationPolicy"] == {"selfManaged": {}}
    assert wire["container"]["experimental"] == {"any": "thing"}
    assert job.container.resources.memoryMB == 4096
