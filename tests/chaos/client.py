"""A user of the REST API that keeps trying through a failover: any master, retried.

A call goes to one master after another until one answers below 500 (and not 429) or the
deadline passes. Submits carry an ``Idempotency-Key`` that stays the same across retries, so
a retry after a failover (the first attempt may have been stored before its answer was lost)
never makes a second job.
"""
from __future__ import annotations

import random
import time
from typing import Optional

import httpx

RETRYABLE = {429, 500, 502, 503, 504}
# how long a read of a job the client was told exists may answer 404 (a standby behind)
STALE_SEC = 3.0


class GaveUp(RuntimeError):
    """No master answered the call usefully before the deadline."""


class ChaosClient:
    """Calls through every master in ``urls``, starting from a random one each time."""

    def __init__(self, urls: list[str], token: str, rng: random.Random,
                 timeout: float = 5.0):
        self.urls = list(urls)
        self.rng = rng
        self.headers = {"authorization": f"Bearer {token}"}
        self.clients = {url: httpx.Client(base_url=url, headers=self.headers, timeout=timeout)
                        for url in self.urls}
        self.retries = 0

    def call(self, method: str, path: str, *, json: Optional[dict] = None,
             params: Optional[dict] = None, headers: Optional[dict] = None,
             deadline_sec: float = 40.0, stale_sec: float = 0.0) -> httpx.Response:
        """The first answer below 500 (not 429) from any master; GaveUp after the deadline.

        ``stale_sec``: a 404 is tried again elsewhere for that long (a standby that has not
        yet read a job the leader just stored answers 404 for it)."""
        began = time.monotonic()
        deadline = began + deadline_sec
        start = self.rng.randrange(len(self.urls))
        last = "no attempt"
        attempt = 0
        while time.monotonic() < deadline:
            url = self.urls[(start + attempt) % len(self.urls)]
            attempt += 1
            try:
                response = self.clients[url].request(method, path, json=json, params=params,
                                                     headers=headers)
                stale = response.status_code == 404 and time.monotonic() - began < stale_sec
                if response.status_code not in RETRYABLE and not stale:
                    return response
                last = f"{url}: HTTP {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__}: {exc}"
            self.retries += 1
            time.sleep(min(0.5, 0.05 * attempt))
        raise GaveUp(f"{method} {path}: no useful answer in {deadline_sec}s; last: {last}")

    def submit(self, descriptor: dict, key: str) -> str:
        """Create a job with ``Idempotency-Key: key``; returns its id."""
        response = self.call("POST", "/api/v3/jobs", json=descriptor,
                             headers={"Idempotency-Key": key})
        if response.status_code not in (200, 201, 202):
            raise GaveUp(f"submit refused: HTTP {response.status_code} {response.text[:300]}")
        body = response.json()
        return body["id"] if isinstance(body, dict) else str(body)

    def resize(self, job_id: str, desired: int, maximum: int = 100) -> None:
        """Set a service job's desired count."""
        response = self.call("PUT", f"/api/v3/jobs/{job_id}/instances",
                             json={"min": 0, "desired": desired, "max": maximum})
        if response.status_code not in (200, 202, 204):
            raise GaveUp(f"resize refused: HTTP {response.status_code} {response.text[:300]}")

    def job(self, job_id: str) -> Optional[dict]:
        """The job (live or archived), or None when no master knows it."""
        response = self.call("GET", f"/api/v3/jobs/{job_id}", stale_sec=STALE_SEC)
        return response.json() if response.status_code == 200 else None

    def tasks(self, job_id: str) -> list[dict]:
        """Every task of the job, finished ones included."""
        items: list[dict] = []
        cursor = None
        while True:
            params = {"jobId": job_id, "pageSize": 5000}
            if cursor:
                params["cursor"] = cursor
            response = self.call("GET", "/api/v3/tasks", params=params, stale_sec=STALE_SEC)
            if response.status_code != 200:
                raise GaveUp(f"tasks of {job_id}: HTTP {response.status_code}")
            body = response.json()
            items += body["items"]
            page = body.get("pagination") or {}
            cursor = page.get("cursor")
            if not page.get("hasMore") or not cursor:
                return items

    def close(self) -> None:
        """Close every connection."""
        for client in self.clients.values():
            client.close()
