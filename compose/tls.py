"""A private CA and a server certificate for Mosquitto's TLS listener, made on first `up`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def ensure_certificates(
    ca_dir: Path, server_dir: Path, extra_sans: tuple[str, ...] = ()
) -> dict[str, Path]:
    """Create ca.crt/ca.key in ``ca_dir`` and server.crt/server.key in ``server_dir``.

    The CA key stays out of the broker's directory: the broker account never reads it.
    """
    ca_dir.mkdir(parents=True, exist_ok=True)
    server_dir.mkdir(parents=True, exist_ok=True)
    files = {name: ca_dir / name for name in ("ca.crt", "ca.key")}
    files |= {name: server_dir / name for name in ("server.crt", "server.key")}
    if all(p.exists() for p in files.values()):
        return files
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homestream local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *extra_sans]
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname())]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([_san_entry(n) for n in dict.fromkeys(names)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(files["ca.key"], ca_key)
    files["server.crt"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(files["server.key"], key)
    return files


def load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The stack's CA (made by ``ensure_certificates`` on the first `up`)."""
    try:
        cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    except FileNotFoundError:
        from compose.errors import LauncherError

        raise LauncherError(f"no CA in {ca_dir}: run `homestream up` (or `init`) first") from None
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue(
    ca_dir: Path,
    common_name: str,
    *,
    client: bool,
    server: bool = False,
    sans: tuple[str, ...] = (),
    days: int = 825,
) -> tuple[int, bytes, bytes]:
    """(serial, certificate PEM, key PEM) for ``common_name``, signed by the stack's CA: a
    client certificate (a hub: the broker takes its CN as the MQTT user), a server's, or
    both (``client`` and ``server``)."""
    ca, ca_key = load_ca(ca_dir)
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if server or not client:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san_entry(n) for n in dict.fromkeys(sans)]),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return serial, cert.public_bytes(serialization.Encoding.PEM), key_pem


def hub_certificate(ca_dir: Path, username: str) -> tuple[int, bytes, bytes]:
    """A hub's certificate: its MQTT login (CN, the user the broker's ACL checks) and its
    LAN API's server certificate, for the name ``username`` (SAN), which apps that trust the
    stack's CA check whatever address they reach the hub at (as Hue apps check a bridge's id)."""
    return issue(ca_dir, username, client=True, server=True, sans=(username,))


def write_crl(ca_dir: Path, path: Path, revoked_serials: list[int]) -> None:
    """The CA's certificate revocation list of ``revoked_serials`` (PEM), which the broker's
    certificate listener checks every client certificate against."""
    ca, ca_key = load_ca(ca_dir)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=3650))
    )
    for serial in sorted(revoked_serials):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    tmp.chmod(0o644)
    tmp.replace(path)
