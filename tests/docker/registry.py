"""A Docker registry on loopback for the image-pull tests: Debian's ``docker-registry``
(the Distribution registry) started as a child process with a temporary config on a free
port, optionally behind htpasswd basic auth. dockerd lets registries on 127.0.0.0/8 speak
plain HTTP without being configured as insecure, so no TLS is needed."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import httpx

from titus.cli.local_cluster import free_port

ENABLE_HINT = ("run `sudo bash .ci/registry.sh` (installs Debian's docker-registry) to enable "
               "the image-pull tests")


def bcrypt_hash(password: str) -> Optional[str]:
    """A bcrypt hash for an htpasswd file (glibc's crypt), or None where it is not offered."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except (ImportError, AttributeError, ValueError, OSError):
        return None
    return hashed if hashed and hashed.startswith("$2") else None


class Registry:
    """``with Registry() as r: r.address`` ("127.0.0.1:port"); ``users`` {name: password}
    puts it behind htpasswd basic auth."""

    def __init__(self, users: Optional[dict[str, str]] = None):
        self.binary = shutil.which("docker-registry")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.users = dict(users or {})
        self.dir = Path(tempfile.mkdtemp(prefix="titus-registry-"))
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "Registry":
        if self.binary is None:
            raise FileNotFoundError("docker-registry is not installed")
        auth = ""
        if self.users:
            lines = []
            for name, password in self.users.items():
                hashed = bcrypt_hash(password)
                if hashed is None:
                    raise RuntimeError("no bcrypt for the registry's htpasswd file")
                lines.append(f"{name}:{hashed}")
            (self.dir / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = (f"auth:\n  htpasswd:\n    realm: titus-test\n"
                    f"    path: {self.dir / 'htpasswd'}\n")
        (self.dir / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n{auth}")
        log = open(self.dir / "registry.log", "wb")
        self.process = subprocess.Popen([self.binary, "serve", str(self.dir / "config.yml")],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log()}")
            try:
                if httpx.get(f"http://{self.address}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.address}: {self.log()}")

    def log(self) -> str:
        path = self.dir / "registry.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def require_registry() -> None:
    """Skip (or fail under ``TITUS_REQUIRE_REGISTRY=1``) when docker-registry is missing."""
    import pytest

    if shutil.which("docker-registry") is None:
        message = f"docker-registry is not installed; {ENABLE_HINT}"
        if os.environ.get("TITUS_REQUIRE_REGISTRY") == "1":
            pytest.fail(f"{message} (TITUS_REQUIRE_REGISTRY=1)")
        pytest.skip(message)
