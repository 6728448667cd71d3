"""TLS test kit: a throw-away certificate authority (a CA and server certificates it signs)
and an HTTP(S) server in a thread."""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class ServerFiles:
    """A server's PEM certificate and key files."""

    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=1))


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


class TestCA:
    """A self-signed CA written to ``folder/<name>.pem``; :meth:`issue` signs server certs."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "ca"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        builder = _validity(x509.CertificateBuilder()
                            .subject_name(_name(f"titus test {name}"))
                            .issuer_name(_name(f"titus test {name}"))
                            .public_key(self.key.public_key())
                            .serial_number(x509.random_serial_number()))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0),
                                        critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
        self.cert = builder.sign(self.key, hashes.SHA256())
        self.path = self.folder / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str = "server",
              hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> ServerFiles:
        """A server certificate for ``hosts`` (IP addresses and DNS names), key mode 0600."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = _validity(x509.CertificateBuilder()
                            .subject_name(_name(hosts[0]))
                            .issuer_name(self.cert.subject)
                            .public_key(key.public_key())
                            .serial_number(x509.random_serial_number()))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                        critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False)
        files = ServerFiles(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        files.cert.write_bytes(builder.sign(self.key, hashes.SHA256())
                               .public_bytes(serialization.Encoding.PEM))
        _write_key(key, files.key)
        return files


@contextlib.contextmanager
def serve_app(app, files: Optional[ServerFiles] = None) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread, over HTTPS with ``files`` (else plain
    HTTP); yields the base URL (``https://127.0.0.1:<port>``)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)} if files else {}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-http-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"{'https' if files else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
