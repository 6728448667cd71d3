"""Regenerate the web UI's screenshots in ``docs/images/ui-*.png``.

Runs the browser test (``tests/integration/test_ui_browser.py``: a real master, sim agents
and headless Chromium) with ``TITUS_UI_SCREENSHOTS`` pointing at ``docs/images``. Needs what
that test needs: ``bash .ci/browser.sh`` and ``pip install -e '.[test]'``.

    python bench/ui_screenshots.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Run the browser test once, writing its screenshots into docs/images."""
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TITUS_UI_SCREENSHOTS=str(out), TITUS_REQUIRE_BROWSER="1")
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/integration/test_ui_browser.py"], cwd=ROOT, env=env)
    if code == 0:
        for path in sorted(out.glob("ui-*.png")):
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
    return code


if __name__ == "__main__":
    sys.exit(main())
