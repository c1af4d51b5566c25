"""Who may use the embedded broker. On loopback anyone local may (the demo, a laptop). On any other address
`kawal serve` either uses the password and ACL files that `kawal devices add` maintains, or refuses to start:
an anonymous broker on a network would let anyone publish readings for any crate.

With the files, mosquitto gets two listeners (`per_listener_settings`): the requested address with
`allow_anonymous false`, the password file and the ACL, for trackers; and a loopback one on a free port for
Kawal's own consumer, which therefore needs no password of its own.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PASSWORD_FILE = Path("mosquitto/passwd")  # the defaults of `kawal devices add`
DEFAULT_ACL_FILE = Path("mosquitto/acl")


class BrokerAuthError(Exception):
    """The embedded broker would be open to the network without authentication."""


@dataclass(frozen=True)
class BrokerAuth:
    password_file: Path
    acl_file: Path
    internal_port: int  # the loopback listener Kawal itself connects to

    def listener_lines(self, host: str, port: int) -> list[str]:
        return [
            "per_listener_settings true",
            f"listener {port} {host}",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            f"listener {self.internal_port} 127.0.0.1",
            "allow_anonymous true",
        ]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_auth(host: str, kind: str, password_file: str | None, acl_file: str | None) -> BrokerAuth | None:
    """None for a loopback broker (anonymous, local only); the files for any other address; else refuse."""
    if is_loopback(host):
        return None
    pw = Path(password_file) if password_file else DEFAULT_PASSWORD_FILE
    acl = Path(acl_file) if acl_file else DEFAULT_ACL_FILE
    if kind != "mosquitto":
        raise BrokerAuthError(
            f"the embedded {kind} broker cannot check passwords, so it may not listen on {host}: install mosquitto, "
            "keep KAWAL_EMBEDDED_MQTT_HOST=127.0.0.1, or run a broker of your own and set KAWAL_MQTT_URL"
        )
    if not pw.is_file() or pw.stat().st_size == 0 or not acl.is_file():
        raise BrokerAuthError(
            f"refusing to run the embedded broker on {host} without authentication: no password file at "
            f"{pw.absolute()} (or no ACL file at {acl.absolute()}). Provision the trackers first with "
            "`kawal devices add TRACKER_ID` (it writes both files; KAWAL_MOSQUITTO_PASSWORD_FILE and "
            "KAWAL_MOSQUITTO_ACL_FILE point elsewhere), keep KAWAL_EMBEDDED_MQTT_HOST=127.0.0.1, or set KAWAL_MQTT_URL"
        )
    return BrokerAuth(pw.absolute(), acl.absolute(), _free_loopback_port())
