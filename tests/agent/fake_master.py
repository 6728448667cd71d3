"""A tiny in-process stand-in for the master's agent endpoints, as an httpx transport."""
import json
import threading

import httpx


class FakeMaster:
    """Records registrations and heartbeats; hands out queued orders; can go down."""

    def __init__(self):
        self.lock = threading.Lock()
        self.registrations = []
        self.heartbeats = []
        self.statuses = []  # every status received, in order
        self.orders = []
        self.down = False
        self.forget_agents = False  # answer heartbeats with 404 (a master that lost us)
        self.reregister_once = False
        self.deregistered = []
        self.known = set()
        self.token = None  # when set, requests must carry "Bearer <token>"
        self.garbage = False  # answer heartbeats with something that is not the protocol

    def queue(self, *orders):
        with self.lock:
            self.orders.extend(orders)

    def client(self):
        return httpx.Client(base_url="http://master.test", transport=httpx.MockTransport(self))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "bad agent token"})
        with self.lock:
            if path == "/api/v3/agents/register":
                body = json.loads(request.content)
                self.registrations.append(body)
                self.known.add(body["agent_id"])
                return httpx.Response(200, json={"agent_id": body["agent_id"],
                                                 "heartbeat_interval_sec": 0.05,
                                                 "heartbeat_timeout_sec": 2})
            agent_id = path.split("/")[4]
            if request.method == "DELETE":
                self.deregistered.append(agent_id)
                return httpx.Response(200, json={})
            if self.forget_agents or agent_id not in self.known:
                return httpx.Response(404, json={"error": "unknown agent"})
            if self.garbage:
                return httpx.Response(200, text="<html>gateway says hi</html>")
            body = json.loads(request.content)
            self.heartbeats.append(body)
            self.statuses.extend(body["statuses"])
            orders, self.orders = self.orders, []
            reregister, self.reregister_once = self.reregister_once, False
            return httpx.Response(200, json={"orders": orders, "reregister": reregister})

    def states_of(self, task_id):
        with self.lock:
            return [s["state"] for s in self.statuses if s["task_id"] == task_id]
