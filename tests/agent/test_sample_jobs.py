"""The bundled sample jobs are valid Titus v3 descriptors the master accepts."""
import pytest

from titus.sample_jobs import load_samples, sample_files


def test_there_are_batch_and_service_samples():
    samples = load_samples()
    assert any("batch" in d for d in samples.values())
    assert any("service" in d for d in samples.values())
    assert len(sample_files()) >= 3


@pytest.mark.parametrize("name", sample_files())
def test_sample_passes_the_masters_validation(name):
    from titus.master.validation import check_job, parse_job, ValidationLimits

    descriptor = load_samples()[name]
    job = parse_job(descriptor)
    assert check_job(job, ValidationLimits()) == []
    env = descriptor["container"]["env"]
    assert float(env["TITUS_SIM_DURATION_SEC"]) >= 0


@pytest.mark.parametrize("name", sample_files())
def test_samples_use_the_default_capacity_group_by_its_name(name):
    # "default" beside the master's "DEFAULT" showed one group as two in titus job list
    group = load_samples()[name].get("capacityGroup")
    assert group in (None, "DEFAULT")
