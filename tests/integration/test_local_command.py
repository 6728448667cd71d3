"""``titus local --sample``: master and agents start, samples run, everything stops."""
import subprocess

from titus.cli.local_cluster import titus_command


def test_local_sample_runs_batch_jobs_to_the_end_and_cleans_up(tmp_path):
    workdir = tmp_path / "local"
    result = subprocess.run(titus_command("local", "--sample", "--port", "0", "--agents", "2",
                                          "--dir", str(workdir)),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "User token" in result.stdout and "http://127.0.0.1:" in result.stdout
    assert "sample batch jobs finished" in result.stdout
    assert (workdir / "titus.db").exists()  # the store stays in a given --dir
    # every child is gone: no agent still points at the master's URL
    url = next(word for word in result.stdout.split() if word.startswith("http://127.0.0.1:"))
    assert subprocess.run(["pgrep", "-f", "--", f"--master {url}"]).returncode == 1
