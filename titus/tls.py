"""TLS for Titus's HTTP links: the master's certificate files and the clients' trust.

The master serves HTTPS when given a certificate and its key (:func:`check_server_files`
checks them before it starts). Clients (the CLI, agents, the master reading an agent's logs)
verify the server against a CA bundle given to them, else against the system store
(:func:`client_context`). Verification is never turned off.
"""
from __future__ import annotations

import functools
import os
import ssl
import stat
from typing import Optional


class TLSConfigError(ValueError):
    """A certificate, key or CA bundle that cannot be used (missing, unreadable, not PEM)."""


@functools.lru_cache(maxsize=16)
def client_context(ca: Optional[str] = None) -> ssl.SSLContext:
    """A context verifying servers (chain and host name) against ``ca``: a PEM bundle file or
    an OpenSSL hashed directory. Without ``ca``: the system store (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` apply), or certifi's bundle where the system has none.

    Contexts are cached per ``ca`` (loading a store costs milliseconds); do not change them.
    """
    if not ca:
        return _system_context()
    _check_readable(ca, "CA bundle", directory_ok=True)
    try:
        if os.path.isdir(ca):
            return ssl.create_default_context(capath=ca)
        return ssl.create_default_context(cafile=ca)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TLSConfigError(f"CA bundle {ca} holds no usable PEM certificate: {exc}") from None


def _system_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not context.cert_store_stats()["x509_ca"] and not _has_default_dir():
        # e.g. a minimal container image without ca-certificates: trust Mozilla's list
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    return context


def _has_default_dir() -> bool:
    # a hashed directory is loaded lazily, so an empty count does not mean "no store"
    paths = ssl.get_default_verify_paths()
    return bool(paths.capath) and os.path.isdir(paths.capath) and bool(os.listdir(paths.capath))


def check_server_files(cert: Optional[str], key: Optional[str]) -> list[str]:
    """Check the master's certificate chain and key before serving; return warnings.

    Raises :class:`TLSConfigError` if only one is given, a file is missing or unreadable, or
    the key does not belong to the certificate.
    """
    if not cert and not key:
        return []
    if not cert or not key:
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise TLSConfigError(f"{given} is set but {missing} is not: HTTPS needs both "
                             "(--tls-cert/TITUS_TLS_CERT and --tls-key/TITUS_TLS_KEY)")
    _check_readable(cert, "TLS certificate")
    _check_readable(key, "TLS key")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise TLSConfigError(f"cannot use TLS certificate {cert} with key {key} (not PEM, "
                             f"encrypted, or not a matching pair): {exc}") from None
    return _key_warnings(key)


def _check_readable(path: str, what: str, directory_ok: bool = False) -> None:
    """A clear error for a path we cannot read (rather than a traceback from ssl)."""
    if not os.path.exists(path):
        raise TLSConfigError(f"{what} {path} does not exist")
    if os.path.isdir(path):
        if not directory_ok:
            raise TLSConfigError(f"{what} {path} is a directory, not a file")
        if not os.access(path, os.R_OK | os.X_OK):
            raise TLSConfigError(f"{what} {path} is not readable by this user")
        return
    try:
        with open(path, "rb") as handle:  # the real test: os.access says yes to root
            handle.read(1)
    except OSError as exc:
        raise TLSConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _key_warnings(key: str) -> list[str]:
    mode = stat.S_IMODE(os.stat(key).st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"TLS key {key} is readable by other users (mode {mode:04o}); "
                f"restrict it with: chmod 600 {key}"]
    return []


# OpenSSL verify results that a CA bundle given to the client would fix: unknown issuer (2, 20),
# self-signed certificate or chain (18, 19), leaf signature not verifiable (21)
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}
_NAME_MISMATCH = {62, 64}  # host name, IP address


def describe_failure(exc: BaseException, url: str) -> Optional[str]:
    """Say what a failed connection to ``url`` means when TLS is the cause; None otherwise."""
    verify = _find_cause(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        return _describe_verify(verify)
    if _find_cause(exc, ssl.SSLError) is not None and url.startswith("https://"):
        return f"the TLS handshake failed ({_first_line(exc)}): does the server serve HTTPS?"
    if url.startswith("http://") and "disconnected without sending a response" in str(exc):
        return ("the server closed the connection without answering: if it serves HTTPS, use "
                "an https:// URL")
    return None


def _describe_verify(error: ssl.SSLCertVerificationError) -> str:
    reason = error.verify_message or _first_line(error)
    if error.verify_code in _UNKNOWN_ISSUER:
        return (f"its certificate is not trusted ({reason}): give the CA that signed it with "
                "--ca FILE (env TITUS_CA)")
    if error.verify_code in _NAME_MISMATCH:
        return (f"its certificate does not name this host ({reason}): use a host name or "
                "address the certificate lists")
    return f"its certificate was rejected ({reason})"


def _find_cause(exc: BaseException, kind: type) -> Optional[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
