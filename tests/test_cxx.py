"""The engine's own C++ tests (csrc/tests, doctest): compiled here and run.

They cover what Python cannot reach directly: the host-class index, the score bound, the port
and resource-set allocators and the fit test. doctest is header-only: Debian's ``doctest-dev``
(``sudo apt-get install doctest-dev``; ``.ci/cxx.sh`` does it), or any directory holding
``doctest/doctest.h`` named by ``TITUS_DOCTEST_INCLUDE``.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"

pytestmark = pytest.mark.timeout(600)


def _doctest_include() -> Path:
    candidates = [os.environ.get("TITUS_DOCTEST_INCLUDE"), "/usr/include", "/usr/local/include"]
    for c in candidates:
        if c and (Path(c) / "doctest" / "doctest.h").is_file():
            return Path(c)
    pytest.fail("doctest is not installed: `sudo apt-get install doctest-dev` (or `sudo bash .ci/cxx.sh`), "
                "or set TITUS_DOCTEST_INCLUDE to a directory holding doctest/doctest.h")


def test_cxx_unit_tests_pass(tmp_path):
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    assert compiler, "no C++ compiler (g++) on PATH"
    include = _doctest_include()
    binary = tmp_path / "engine_tests"
    sources = sorted(str(p) for p in (CSRC / "tests").glob("*.cpp"))
    assert len(sources) >= 5
    build = subprocess.run([compiler, "-std=c++17", "-O1", "-Wall", "-Werror", f"-I{CSRC}", f"-I{include}",
                            "-o", str(binary), *sources], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Status: SUCCESS!" in run.stdout
