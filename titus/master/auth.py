"""Who may do what: principals, scopes and the tokens that name them.

Scopes (docs/security.md):

- ``read``: every GET (jobs, tasks, hosts, agents, groups, logs, metrics, the event stream);
- ``user`` (includes ``read``): submit jobs, and kill, resize and kill tasks of the jobs *it*
  submitted (the submitting principal is recorded with the job);
- ``admin`` (includes ``user``): any job, capacity groups, instance groups and rules;
- ``agent`` (apart from the others): the agent protocol. The bootstrap token (``--agent-token``)
  may only register; a registration hands the agent its own credential, which alone may
  heartbeat, re-register and deregister *that* agent (Kubernetes' node credentials and its
  NodeRestriction admission rule are the model).

Tokens come from a token file (``--token-file``, YAML, see :func:`load_token_file`) and from the
classic flags: ``--token`` is a user token (principal ``user``, ``user-2`` ...), ``--agent-token``
the agents' bootstrap token. Only SHA-256 digests are kept; a presented token is hashed and
compared with every known digest in constant time, without stopping at the first match.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import yaml

READ, USER, ADMIN, AGENT = "read", "user", "admin", "agent"
SCOPES = (READ, USER, ADMIN, AGENT)
IMPLIED = {ADMIN: {ADMIN, USER, READ}, USER: {USER, READ}, READ: {READ}, AGENT: {AGENT}}
BOOTSTRAP = "agent-bootstrap"  # the name of the principal of --agent-token
AGENT_PREFIX = "agent:"  # an agent's own credential names the principal agent:<id>


def digest(token: str) -> str:
    """SHA-256 of a token, as hex (what a token file and the store keep)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a name and its scopes (implied scopes included)."""

    name: str
    scopes: frozenset = field(default_factory=frozenset)

    def can(self, scope: str) -> bool:
        """Whether this principal holds ``scope``."""
        return scope in self.scopes

    @property
    def agent_id(self) -> Optional[str]:
        """The agent this credential belongs to, or None (users, the bootstrap token)."""
        return self.name[len(AGENT_PREFIX):] if self.name.startswith(AGENT_PREFIX) else None

    @property
    def is_bootstrap(self) -> bool:
        """The agents' shared bootstrap token: it may only register new agents."""
        return self.name == BOOTSTRAP


def principal(name: str, scopes: Iterable[str]) -> Principal:
    """A principal with ``scopes`` and every scope they imply."""
    held: set = set()
    for scope in scopes:
        if scope not in IMPLIED:
            raise ValueError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
        held |= IMPLIED[scope]
    return Principal(name, frozenset(held))


# Without any token configured (``--insecure``) every caller is this principal.
ANONYMOUS = principal("anonymous", [ADMIN, AGENT])


@dataclass(frozen=True)
class TokenEntry:
    """One token: its principal's name, the token's SHA-256 and the scopes it grants."""

    name: str
    sha256: str
    scopes: tuple

    def principal(self) -> Principal:
        """The principal this token names."""
        return principal(self.name, self.scopes)


class TokenBook:
    """Every configured token, by digest. ``enabled`` is False when there is none."""

    def __init__(self, entries: Iterable[TokenEntry] = ()):
        self.entries = list(entries)
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise ValueError("two tokens have the same name")
        self._principals = [(e.sha256.encode(), e.principal()) for e in self.entries]

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (then every endpoint but /health* needs one)."""
        return bool(self.entries)

    @property
    def has_agent_auth(self) -> bool:
        """Whether agents have a token to join with."""
        return any(AGENT in e.scopes for e in self.entries)

    def lookup(self, token: Optional[str]) -> Optional[Principal]:
        """The principal of ``token``, or None; compares against every digest, always."""
        if not token:
            return None
        presented = digest(token).encode()
        found = None
        for known, who in self._principals:
            if hmac.compare_digest(presented, known) and found is None:
                found = who
        return found

    @classmethod
    def from_settings(cls, user_tokens: Iterable[str], agent_token: Optional[str],
                      token_file: Optional[str]) -> "TokenBook":
        """The tokens of the classic flags and of the token file."""
        entries = load_token_file(token_file) if token_file else []
        for i, token in enumerate(user_tokens):
            entries.append(TokenEntry("user" if i == 0 else f"user-{i + 1}", digest(token),
                                      (USER,)))
        if agent_token:
            entries.append(TokenEntry(BOOTSTRAP, digest(agent_token), (AGENT,)))
        return cls(entries)


def load_token_file(path: str) -> list[TokenEntry]:
    """Tokens from a YAML file::

        tokens:
          - name: alice            # the principal (jobs record who submitted them)
            sha256: 9f86d0...      # SHA-256 of the token, hex (`titus token new` prints it)
            scopes: [user]         # read, user, admin or agent

    Raises ValueError naming the entry and field that is wrong."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"token file {path}: cannot read it: {exc}") from None
    items = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"token file {path}: expected a mapping with a list 'tokens'")
    entries = []
    for i, item in enumerate(items):
        where = f"token file {path}: tokens[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with name, sha256, scopes")
        name, sha, scopes = item.get("name"), item.get("sha256"), item.get("scopes")
        if (not isinstance(name, str) or not name or name.startswith(AGENT_PREFIX)
                or name in (BOOTSTRAP, "anonymous")):
            raise ValueError(f"{where}.name: a non-empty name, not 'anonymous' or "
                             f"'{BOOTSTRAP}', not starting with 'agent:'")
        if not (isinstance(sha, str) and len(sha) == 64
                and all(c in "0123456789abcdef" for c in sha.lower())):
            raise ValueError(f"{where}.sha256: the token's SHA-256 as 64 hex digits")
        if not isinstance(scopes, list) or not scopes or any(s not in IMPLIED for s in scopes):
            raise ValueError(f"{where}.scopes: a list of {', '.join(SCOPES)}")
        entries.append(TokenEntry(name, sha.lower(), tuple(scopes)))
    return entries


def startup_problem(book: TokenBook, insecure: bool) -> Optional[str]:
    """Why a master with these tokens must not start, or None.

    A master without any token lets anyone do anything: it needs ``insecure`` (and warns).
    With user tokens but no way for agents to authenticate, no agent could ever join."""
    if not book.enabled:
        return None if insecure else (
            "no token is configured: anyone could submit jobs, register agents and read every "
            "job. Set --token/--agent-token or --token-file (TITUS_TOKEN_FILE), or pass "
            "--insecure to run without authentication")
    if not book.has_agent_auth:
        return ("tokens are configured but none lets agents join: set --agent-token "
                "(TITUS_AGENT_TOKEN) or a token with the 'agent' scope in the token file")
    return None
