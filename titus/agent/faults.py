"""Whose fault a failed runtime call is: the user's or the system's.

Every Docker call that fails is classified here, at the runtime boundary:

- the **user's** (:data:`USER`): the task cannot run as asked, and asking again will not help:
  an image that is not there, a command that does not exist, a limit the engine refuses
  (HTTP 4xx), and, reported elsewhere, OOM kills and non-zero exits;
- the **system's** (:data:`SYSTEM`): the engine could not be reached or did not answer in time,
  or failed inside (HTTP 5xx), or asked us to slow down (HTTP 429). The task itself may be
  fine: it ends ``transientSystemError``, which never spends the user's retries, after the
  runtime has retried the call with back-off.

(The autoscaler's AWS calls are isolated per instance group instead: see
``titus.autoscale.autoscaler``.)
"""
from __future__ import annotations

from dataclasses import dataclass

USER = "user"
SYSTEM = "system"

# Engine answers with a 5xx status whose words show that the task's own spec is at fault
# (older engines answer 500 for a command that does not exist).
_USER_WORDS = ("executable file not found", "invalid reference format", "minimum memory limit")
# ... and words that are the task's fault only when they are about its command (an overlay
# mount or a cgroup directory "not found" or "permission denied" is the engine's own trouble)
_EXEC_WORDS = ("no such file or directory", "permission denied")

@dataclass(frozen=True)
class Fault:
    """A classified failure: ``kind`` is :data:`USER` or :data:`SYSTEM`; ``message`` is one
    line in the engine's own words, prefixed with what failed."""

    kind: str
    message: str

    @property
    def system(self) -> bool:
        """Whether the system is at fault (retry; never spend the user's retries)."""
        return self.kind == SYSTEM


def classify_docker(exc: BaseException, doing: str = "launch") -> Fault:
    """Classify an exception raised by a docker SDK call made while ``doing`` something.

    Connection failures, timeouts and protocol breaks (``requests``/``urllib3``/``OSError``),
    HTTP 5xx, 408 and 429, and "no such container" for the task's own container are the system's; other HTTP errors (4xx: bad image, bad command, refused
    limits) are the user's. Anything else unknown counts as the system's: it says nothing
    about the task's spec, and a wrong "user" verdict would spend a retry the user did not
    lose."""
    status = _status_code(exc)
    text = _one_line(exc)
    if status == 404 and "no such container" in text.lower():
        # our own container vanished mid-launch (a create cut off by an outage is still being
        # committed, or was rolled back): the engine's state, not the task's spec
        return Fault(SYSTEM, f"{doing} failed: engine error (HTTP 404): {text}")
    if status is not None:
        if status in (408, 429) or (status >= 500 and not _user_words(text)):
            return Fault(SYSTEM, f"{doing} failed: engine error (HTTP {status}): {text}")
        return Fault(USER, f"{doing} failed: {text}")
    return Fault(SYSTEM, f"{doing} failed: engine unreachable ({type(exc).__name__}: {text})")


# A pull refused for what was asked: the image or tag does not exist in the registry, the
# name is malformed, or the registry refuses the credentials (Docker Hub answers "pull access
# denied ... may require 'docker login'" for a repository that does not exist).
_PULL_USER_WORDS = ("manifest unknown", "not found", "repository does not exist",
                    "pull access denied", "unauthorized", "no basic auth credentials",
                    "authentication required", "denied:", "invalid reference format",
                    "name unknown")


def classify_pull(exc: BaseException) -> Fault:
    """Classify a failed image pull: the user's when the registry answered that the image,
    tag or access does not exist (HTTP 404, 4xx, or the engine's 500 carrying the registry's
    refusal: "manifest unknown", "pull access denied", "no basic auth credentials"); the
    system's when the registry or the engine could not be reached or failed inside
    (connection refused, timeouts, DNS, the registry's own 5xx, 429 rate limits)."""
    status = _status_code(exc)
    text = _one_line(exc)
    low = text.lower()
    if status in (408, 429) or "toomanyrequests" in low:
        return Fault(SYSTEM, f"pull failed: registry or engine busy (HTTP {status}): {text}")
    if status is not None and (400 <= status < 500 or any(w in low for w in _PULL_USER_WORDS)):
        return Fault(USER, f"pull failed: {text}")
    if status is not None:
        return Fault(SYSTEM, f"pull failed: registry or engine error (HTTP {status}): {text}")
    return Fault(SYSTEM, f"pull failed: engine unreachable ({type(exc).__name__}: {text})")


def _status_code(exc: BaseException):
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _user_words(text: str) -> bool:
    low = text.lower()
    if any(word in low for word in _USER_WORDS):
        return True
    # the runtime's words for the task's command: exec: "/bin/x": stat ...: no such file
    return 'exec: "' in low and any(word in low for word in _EXEC_WORDS)


def _one_line(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc) or type(exc).__name__
    return " ".join(text.split())[:500]
