"""TLS to the broker: mqtts:// with a CA file, and with a client certificate too, against a private
Mosquitto whose CA, server and client certificates are generated here."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.faults import health, publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, free_port, wait_for

TlsBroker = tuple[Mosquitto, int, int, dict[str, Path]]  # broker, TLS port, client-certificate port, PEM files


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".crt")
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def make_pki(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kawal test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(name: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return _write(folder / name, key, builder.sign(ca_key, hashes.SHA256()))

    ca_path = folder / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_crt, server_key = leaf(
        "server", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    client_crt, client_key = leaf("kawal-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return {
        "ca": ca_path,
        "server_crt": server_crt,
        "server_key": server_key,
        "client_crt": client_crt,
        "client_key": client_key,
    }


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """Mosquitto with a plain listener (for the test's publisher), a TLS one, and a TLS one that requires a
    client certificate signed by the CA."""
    pki = make_pki(tmp_path / "pki")
    tls_port, mutual_port = free_port(), free_port()
    tls = f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
    broker = Mosquitto(
        tmp_path / "broker",
        extra_config=f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\n{tls}"
        f"listener {mutual_port} 127.0.0.1\n{tls}require_certificate true\n",
    ).start()
    yield broker, tls_port, mutual_port, pki
    broker.stop()


def _ingests(srv: KawalServer, broker: Mosquitto, tracker: str) -> None:
    srv.wait_healthy(60)
    pub = publisher(broker.port, client_id=f"tls-pub-{tracker}")
    publish(pub, tracker, range(5))
    wait_for(lambda: stored(srv.workdir / "kawal.db", tracker) == 5, 30, f"{tracker}'s readings stored")
    stop(pub)


def test_mqtts_with_a_ca_file(kawal_factory: Callable[..., KawalServer], tls_broker: TlsBroker) -> None:
    broker, tls_port, _, pki = tls_broker
    srv = kawal_factory(
        env={"KAWAL_MQTT_URL": f"mqtts://127.0.0.1:{tls_port}", "KAWAL_MQTT_CA_FILE": str(pki["ca"])}, start=False
    )
    _ingests(srv.start(wait=False), broker, "TRK-TLS1")


def test_mqtts_with_a_client_certificate(kawal_factory: Callable[..., KawalServer], tls_broker: TlsBroker) -> None:
    broker, _, mutual_port, pki = tls_broker
    env = {
        "KAWAL_MQTT_URL": f"mqtts://127.0.0.1:{mutual_port}",
        "KAWAL_MQTT_CA_FILE": str(pki["ca"]),
        "KAWAL_MQTT_CERT_FILE": str(pki["client_crt"]),
        "KAWAL_MQTT_KEY_FILE": str(pki["client_key"]),
    }
    _ingests(kawal_factory(env=env, start=False).start(wait=False), broker, "TRK-TLS2")


def test_mqtts_without_the_client_certificate_is_not_let_in(
    kawal_factory: Callable[..., KawalServer], tls_broker: TlsBroker
) -> None:
    _, _, mutual_port, pki = tls_broker
    env = {"KAWAL_MQTT_URL": f"mqtts://127.0.0.1:{mutual_port}", "KAWAL_MQTT_CA_FILE": str(pki["ca"])}
    srv = kawal_factory(env=env, start=False).start(wait=False)
    # TLS 1.3 checks the client certificate after the handshake: the broker then drops the connection.
    expected = f"connection to the MQTT broker at 127.0.0.1:{mutual_port} lost, reconnecting"
    wait_for(lambda: expected in health(srv)[1].get("reasons", []), 30, "the dropped connection in /healthz")
    assert health(srv)[0] == 503
    assert "session present" not in srv.log()  # never connected


def test_a_broker_certificate_the_ca_does_not_sign_is_named(
    kawal_factory: Callable[..., KawalServer], tls_broker: TlsBroker
) -> None:
    _, tls_port, _, _ = tls_broker
    srv = kawal_factory(env={"KAWAL_MQTT_URL": f"mqtts://127.0.0.1:{tls_port}"}, start=False).start(wait=False)

    def named() -> bool:
        return any("TLS certificate not accepted" in r for r in health(srv)[1].get("reasons", []))

    wait_for(named, 30, "the untrusted broker certificate named in /healthz")
    assert f"to 127.0.0.1:{tls_port}, retrying" in health(srv)[1]["reason"]
