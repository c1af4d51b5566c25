"""`kawal devices`: password hashes, ACL files and the registry, checked against a real Mosquitto."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from devices.cli import devices
from devices.provision import (
    AclFile,
    PasswordFile,
    Provisioner,
    ProvisionError,
    hash_password,
    verify_password,
)
from storage.sqlite import SqliteDatabase
from tests.backends import Backend
from tests.servers import Mosquitto

HASH_RE = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def _auth_broker(factory: Callable[..., Mosquitto], prov: Provisioner) -> Mosquitto:
    return factory(extra_config=(
        "allow_anonymous false\n"
        f"password_file {prov.password_file}\n"
        f"acl_file {prov.acl_file}\n"
        # As root, mosquitto would drop to user "mosquitto", which cannot read pytest's private folders.
        "user root\n"
    ))


class Client:
    """A paho client that records CONNACK, PUBACK reason codes and received messages."""

    def __init__(self, port: int, username: str | None, password: str | None, client_id: str,
                 protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5) -> None:
        self.connack: mqtt.ReasonCode | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.received: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, mqtt.ReasonCode] = {}
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode, p: object) -> None:
        self.connack = rc
        self.connected.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(10)

    def publish(self, topic: str, payload: bytes) -> mqtt.ReasonCode:
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while info.mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pubacks[info.mid]

    def wait_payload(self, payload: bytes, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p == payload for _, p in self.received):
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def prov(tmp_path: Path) -> Provisioner:
    auth = tmp_path / "auth"
    auth.mkdir()
    return Provisioner(auth / "passwd", auth / "acl", SqliteDatabase(tmp_path / "kawal.db"))


def test_hash_format_matches_mosquitto_passwd(tmp_path: Path) -> None:
    h = hash_password("s3cret")
    assert HASH_RE.match(h), h
    assert verify_password("s3cret", h)
    assert not verify_password("s3cret!", h)
    assert not verify_password("s3cret", "$7$garbage")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is not installed: run the README's test command, which installs it")
    pw = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pw), "alice", "correct horse"], check=True)
    theirs = PasswordFile.load(pw).users()["alice"]
    assert HASH_RE.match(theirs)
    assert verify_password("correct horse", theirs)
    assert not verify_password("wrong", theirs)


def test_trackers_publish_only_to_their_own_topics(
    prov: Provisioner, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    t1 = prov.add_tracker("TRK-0001", "JBG-KS-0001")
    t2 = prov.add_tracker("TRK-0002", "JBG-KS-0002")
    svc = prov.add_service_account("kawal")
    broker = _auth_broker(mosquitto_factory, prov)

    kawal = Client(broker.port, "kawal", svc.password, "kawal")
    assert kawal.accepted
    kawal.subscribe("kawal/v1/#")
    tracker = Client(broker.port, "TRK-0001", t1.password, "TRK-0001")
    assert tracker.accepted

    # Its own topic: delivered to Kawal.
    own = b'{"ts": 1732000000, "lat": -7.546, "lon": 112.233}'
    assert not tracker.publish("kawal/v1/TRK-0001/telemetry", own).is_failure
    assert kawal.wait_payload(own)

    # Another tracker's topic: refused (MQTT 5 PUBACK "Not authorized"), and never delivered.
    forged = b'{"ts": 1732000001, "seal": "open"}'
    rc = tracker.publish("kawal/v1/TRK-0002/telemetry", forged)
    assert rc.is_failure and rc.value == 0x87, rc
    # Same publisher, same connection: once this later message arrives, the forged one would have too.
    marker = b'{"ts": 1732000002}'
    tracker.publish("kawal/v1/TRK-0001/telemetry", marker)
    assert kawal.wait_payload(marker)
    assert all(p != forged for _, p in kawal.received)
    assert all(t.startswith("kawal/v1/TRK-0001/") for t, _ in kawal.received)

    # Kawal's account only reads: it cannot inject readings either.
    fake = b'{"ts": 1732000003, "seal": "tampered"}'
    assert kawal.publish("kawal/v1/TRK-0002/telemetry", fake).is_failure
    tracker.publish("kawal/v1/TRK-0001/status", b"online")
    assert kawal.wait_payload(b"online")
    assert all(p != fake for _, p in kawal.received)

    # The second tracker works with its own password.
    other = Client(broker.port, "TRK-0002", t2.password, "TRK-0002")
    assert other.accepted
    other.close()
    tracker.close()
    kawal.close()


def test_wrong_unknown_and_anonymous_logins_are_refused(
    prov: Provisioner, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    t1 = prov.add_tracker("TRK-0001")
    broker = _auth_broker(mosquitto_factory, prov)
    ok = Client(broker.port, "TRK-0001", t1.password, "ok", protocol=mqtt.MQTTv311)
    assert ok.accepted
    ok.close()
    for user, password in [("TRK-0001", t1.password + "x"), ("TRK-9999", t1.password), (None, None),
                           ("TRK-0001", "")]:
        c = Client(broker.port, user, password, f"bad-{user}", protocol=mqtt.MQTTv311)
        assert not c.accepted, (user, c.connack)
        c.close()


def test_rotation_and_revocation_take_effect_on_reload(
    prov: Provisioner, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    old = prov.add_tracker("TRK-0001")
    other = prov.add_tracker("TRK-0002")
    broker = _auth_broker(mosquitto_factory, prov)
    with pytest.raises(ProvisionError, match="--rotate"):
        prov.add_tracker("TRK-0001")
    new = prov.add_tracker("TRK-0001", rotate=True)
    assert new.rotated and new.password != old.password
    assert prov.revoke("TRK-0002")
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)

    def accepted(user: str, password: str) -> bool:
        c = Client(broker.port, user, password, f"c-{user}-{password[:4]}", protocol=mqtt.MQTTv311)
        c.close()
        return c.accepted

    deadline = time.monotonic() + 10
    while accepted("TRK-0001", old.password) and time.monotonic() < deadline:
        time.sleep(0.1)  # SIGHUP is handled asynchronously
    assert not accepted("TRK-0001", old.password)
    assert accepted("TRK-0001", new.password)
    assert not accepted("TRK-0002", other.password)


def test_service_account_may_use_a_shared_subscription(
    prov: Provisioner, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    """Several Kawal processes split the load with $share/<group>/...: the ACL must allow that too."""
    t1 = prov.add_tracker("TRK-0001")
    svc = prov.add_service_account("kawal")
    broker = _auth_broker(mosquitto_factory, prov)
    kawal = Client(broker.port, "kawal", svc.password, "kawal-a")
    kawal.subscribe("$share/kawal/kawal/v1/#")
    tracker = Client(broker.port, "TRK-0001", t1.password, "TRK-0001")
    payload = b'{"ts": 1732000000}'
    tracker.publish("kawal/v1/TRK-0001/telemetry", payload)
    assert kawal.wait_payload(payload)
    tracker.close()
    kawal.close()


def test_files_keep_what_they_do_not_manage(tmp_path: Path) -> None:
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    pw.write_text("# operator's note\nops:$7$101$AAAAAAAAAAAAAAAA$" + "B" * 86 + "==\n")
    acl.write_text("# mine\npattern read $SYS/#\n\nuser ops\ntopic readwrite ops/#\n")
    p = Provisioner(pw, acl)
    p.add_tracker("TRK-1")
    p.add_tracker("TRK-2")
    p.add_tracker("TRK-1", rotate=True)
    assert list(PasswordFile.load(pw).users()) == ["ops", "TRK-1", "TRK-2"]
    assert pw.read_text().startswith("# operator's note\n")
    parsed = AclFile.load(acl)
    assert parsed.get("ops") == ["topic readwrite ops/#"]
    assert parsed.get("TRK-1") == ["topic write kawal/v1/TRK-1/#"]
    assert "pattern read $SYS/#" in parsed.header
    assert acl.read_text().count("user TRK-1") == 1
    assert "\n\n\n" not in acl.read_text()
    assert pw.stat().st_mode & 0o777 == 0o640  # was 0644: hashes are never left world-readable
    with pytest.raises(ProvisionError, match="tracker id"):
        p.add_tracker("TRK 1")
    with pytest.raises(ProvisionError, match="already a tracker account"):
        p.add_service_account("TRK-1", rotate=True)


def test_cli_add_list_and_registry(tmp_path: Path, backend: Backend) -> None:
    runner = CliRunner()
    files = ["--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"),
             "--db", backend.target]
    r = runner.invoke(devices, ["add", "TRK-0007", "--crate", "JBG-KS-0007", "--json", *files])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["username"] == "TRK-0007" and len(out["password"]) >= 32
    stored = PasswordFile.load(tmp_path / "passwd").users()["TRK-0007"]
    assert verify_password(out["password"], stored)

    r = runner.invoke(devices, ["add", "TRK-0007", *files])
    assert r.exit_code != 0 and "--rotate" in r.output

    r = runner.invoke(devices, ["add-service-account", *files])
    assert r.exit_code == 0 and "password:" in r.stdout

    r = runner.invoke(devices, ["list", *files])
    assert r.exit_code == 0
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("TRK-0007"))
    assert "JBG-KS-0007" in line and "yes" in line
    assert "service accounts: kawal" in r.stdout

    db = backend.open()
    row = db.conn().execute("SELECT crate_id FROM trackers WHERE tracker_id = 'TRK-0007'").fetchone()
    assert row["crate_id"] == "JBG-KS-0007"
    audit = db.conn().execute("SELECT action, subject, data FROM audit ORDER BY seq").fetchall()
    assert [(a["action"], a["subject"]) for a in audit] == [
        ("tracker.provision", "tracker:TRK-0007"), ("mqtt_account.provision", "mqtt_account:kawal")]
    assert all(out["password"] not in a["data"] for a in audit)


def test_cli_service_account_from_mqtt_url(tmp_path: Path) -> None:
    """The compose bootstrap: the broker accepts exactly the account KAWAL_MQTT_URL names."""
    runner = CliRunner()
    files = ["--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"),
             "--db", str(tmp_path / "kawal.db")]
    secret = "Zx9-chosen_by-the-operator-0123456789"
    env = {"KAWAL_MQTT_URL": f"mqtt://kawal:{secret}@mosquitto:1883"}
    for _ in range(2):  # idempotent: running the bootstrap twice is fine
        r = runner.invoke(devices, ["add-service-account", "--from-mqtt-url", *files], env=env)
        assert r.exit_code == 0, r.output
        assert secret not in r.stdout
    assert verify_password(secret, PasswordFile.load(tmp_path / "passwd").users()["kawal"])
    assert AclFile.load(tmp_path / "acl").get("kawal") == ["topic read kawal/v1/#", "topic read owntracks/#"]

    r = runner.invoke(devices, ["add-service-account", "--from-mqtt-url", *files],
                      env={"KAWAL_MQTT_URL": "mqtt://mosquitto:1883"})
    assert r.exit_code != 0 and "user:password" in r.output
    r = runner.invoke(devices, ["add-service-account", "other", "--from-mqtt-url", *files], env=env)
    assert r.exit_code != 0 and "not the user" in r.output


def test_owntracks_phone_account(prov: Provisioner, mosquitto_factory: Callable[..., Mosquitto]) -> None:
    """A phone running OwnTracks (CONTRACT 1.3): user `budi`, device `hp1`, tracker id `budi.hp1`."""
    phone = prov.add_tracker("budi.hp1", "JBG-KS-0009", owntracks=True)
    assert phone.username == "budi"
    svc = prov.add_service_account("kawal")
    with pytest.raises(ProvisionError, match=r"USER\.DEVICE"):
        prov.add_tracker("nodot", owntracks=True)
    broker = _auth_broker(mosquitto_factory, prov)
    kawal = Client(broker.port, "kawal", svc.password, "kawal")
    kawal.subscribe("owntracks/#")
    app = Client(broker.port, "budi", phone.password, "budi-hp1")
    loc = b'{"_type": "location", "tst": 1732000000, "lat": -7.55, "lon": 112.23}'
    assert not app.publish("owntracks/budi/hp1", loc).is_failure
    assert kawal.wait_payload(loc)
    forged = b'{"_type": "location", "tst": 1732000001, "lat": 0, "lon": 0}'
    assert app.publish("owntracks/siti/hp2", forged).is_failure
    assert app.publish("kawal/v1/budi.hp1/telemetry", forged).is_failure
    app.close()
    kawal.close()
    assert "budi.hp1" in prov.tracker_ids_with_accounts()

    r = CliRunner().invoke(devices, ["list", "--password-file", str(prov.password_file), "--acl-file",
                                     str(prov.acl_file), "--db", str(prov.db.location if prov.db else "")])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("budi.hp1"))
    assert "JBG-KS-0009" in line and " yes " in line


def test_cli_names_absolute_files_and_creates_no_folder_unasked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defaults are relative (mosquitto/passwd): the command says which absolute files it wrote, refuses
    to invent a missing folder unless --create-dirs, and leaves no lock file behind."""
    monkeypatch.chdir(tmp_path)
    for name in ("KAWAL_MOSQUITTO_PASSWORD_FILE", "KAWAL_MOSQUITTO_ACL_FILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    db = ["--db", str(tmp_path / "kawal.db")]
    r = runner.invoke(devices, ["add", "TRK-0009", *db])
    assert r.exit_code == 1
    assert f"the folder {tmp_path / 'mosquitto'} does not exist: create it, or pass --create-dirs" in r.output
    assert not (tmp_path / "mosquitto").exists()

    r = runner.invoke(devices, ["add", "TRK-0009", "--create-dirs", *db])
    assert r.exit_code == 0, r.output
    assert f"Updated {tmp_path / 'mosquitto' / 'passwd'} and {tmp_path / 'mosquitto' / 'acl'}." in r.stderr
    assert sorted(p.name for p in (tmp_path / "mosquitto").iterdir()) == ["acl", "passwd"]
    r = runner.invoke(devices, ["revoke", "TRK-0009"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "mosquitto").iterdir()) == ["acl", "passwd"]
