"""Bounds are configurable and every bad field is reported with its JSON path."""
import pytest

from titus.master.validation import (SpecError, ValidationLimits, parse_capacity_group,
                                     parse_capacity_update, parse_job)


def base():
    return {"applicationName": "a", "container": {"image": {"name": "busybox", "tag": "1"}},
            "batch": {"size": 2}}


def fields_of(exc: SpecError) -> set:
    return {p.field for p in exc.problems}


def test_every_bad_field_is_reported_not_just_the_first():
    data = base()
    data["applicationName"] = ""
    data["container"]["resources"] = {"cpu": 1000, "memoryMB": -1, "gpu": 99}
    data["container"]["env"] = {"X": "y" * 40000}
    data["batch"] = {"size": 0, "retryPolicy": {"immediate": {"retries": -1}}}
    with pytest.raises(SpecError) as err:
        parse_job(data)
    assert fields_of(err.value) >= {
        "applicationName", "container.resources.cpu", "container.resources.memoryMB",
        "container.resources.gpu", "container.env", "batch.size",
        "batch.retryPolicy.immediate.retries"}


def test_shape_errors_name_the_field():
    data = base()
    data["container"]["resources"] = {"cpu": "lots", "memoryMB": "12x"}
    data["batch"]["size"] = "many"
    with pytest.raises(SpecError) as err:
        parse_job(data)
    assert fields_of(err.value) == {"container.resources.cpu", "container.resources.memoryMB",
                                    "batch.size"}


def test_bounds_are_configurable():
    data = base()
    data["container"]["resources"] = {"cpu": 8}
    parse_job(data)
    with pytest.raises(SpecError) as err:
        parse_job(data, ValidationLimits(max_cpu=4))
    assert fields_of(err.value) == {"container.resources.cpu"}
    data["batch"]["size"] = 11
    with pytest.raises(SpecError) as err:
        parse_job(data, ValidationLimits(max_batch_size=10))
    assert "batch.size" in fields_of(err.value)


def test_exactly_one_of_batch_or_service():
    data = base()
    data["service"] = {"capacity": {"min": 0, "desired": 1, "max": 1}}
    with pytest.raises(SpecError) as err:
        parse_job(data)
    assert "batch" in fields_of(err.value)
    del data["batch"], data["service"]
    with pytest.raises(SpecError):
        parse_job(data)


def test_service_capacity_order_and_nan_cpu():
    data = base()
    del data["batch"]
    data["service"] = {"capacity": {"min": 3, "desired": 1, "max": 2}}
    data["container"]["resources"] = {"cpu": "NaN"}
    with pytest.raises(SpecError) as err:
        parse_job(data)
    assert fields_of(err.value) == {"container.resources.cpu"}  # not finite: a shape error


def test_two_retry_kinds_and_not_an_object():
    data = base()
    data["batch"]["retryPolicy"] = {"immediate": {"retries": 1}, "delayed": {"retries": 1}}
    with pytest.raises(SpecError) as err:
        parse_job(data)
    assert fields_of(err.value) == {"batch.retryPolicy"}
    with pytest.raises(SpecError) as err:
        parse_job([1, 2])
    assert fields_of(err.value) == {"(body)"}


def test_capacity_update_and_group_checks():
    with pytest.raises(SpecError) as err:
        parse_capacity_update({"desired": -1})
    assert fields_of(err.value) == {"desired"}
    with pytest.raises(SpecError) as err:
        parse_capacity_group({"name": "", "tier": "Gold", "resources": {"cpu": -1}})
    assert fields_of(err.value) == {"name", "tier", "resources.cpu"}
    g = parse_capacity_group({"name": "g", "tier": "Critical", "resources": {"cpu": 4}})
    assert g.resources.cpu == 4


@pytest.mark.parametrize("image,field", [
    ({"name": "../../containers/x"}, "container.image.name"),  # walked the engine's API
    ({"name": "UPPER"}, "container.image.name"),
    ({"name": "-rf"}, "container.image.name"),
    ({"name": "a//b"}, "container.image.name"),
    ({"name": "x", "tag": "a:b"}, "container.image.tag"),
    ({"name": "x", "tag": "t" * 129}, "container.image.tag"),
    ({"name": "x", "tag": ".hidden"}, "container.image.tag"),
    ({"name": "x", "digest": "sha256:zz"}, "container.image.digest"),
    ({"name": "x", "digest": "../x:00"}, "container.image.digest"),
])
def test_image_references_docker_cannot_read_are_refused(image, field):
    with pytest.raises(SpecError) as err:
        parse_job({**base(), "container": {"image": image}})
    assert field in [p.field for p in err.value.problems]


@pytest.mark.parametrize("image", [
    {"name": "alpine", "tag": "3.19"}, {"name": "org/app", "digest": "sha256:0123"},
    {"name": "127.0.0.1:5000/titus-test/busybox", "tag": "v1_2-x"},
    {"name": "registry.example.com/a.b/c__d/e-f"}, {"name": "[::1]:5000/x"},
    {"name": "titus-test/busybox", "tag": "latest"}])
def test_image_references_docker_reads_are_accepted(image):
    assert parse_job({**base(), "container": {"image": image}}).container.image.name == image["name"]
