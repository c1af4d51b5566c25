"""Tracker provisioning: the registry entry, a strong MQTT password, Mosquitto's password and ACL files.

Each tracker gets write access to its own topics only, each service account read access to every
tracker; every change is in the audit log. The files' formats, and how they are rewritten safely under a
lock, are in devices/mosquitto_files.py.
"""

from __future__ import annotations

import getpass
import re
import time
from dataclasses import dataclass
from pathlib import Path

# The file formats (devices/mosquitto_files.py) stay importable from here.
from devices.mosquitto_files import (  # noqa: F401
    ACL_HEADER,
    FILE_MODE,
    PBKDF2_ITERATIONS,
    SERVICE_TOPICS,
    AclBlock,
    AclFile,
    PasswordFile,
    ProvisionError,
    Role,
    generate_password,
    hash_password,
    locked,
    owntracks_acl,
    owntracks_parts,
    role_of,
    service_acl,
    tracker_acl,
    verify_password,
    write_atomic,
)
from devices.registry import TrackerRegistry
from kawal.audit import AuditLog
from kawal.trips import ID_RE
from storage import Connection, Database


def check_id(value: str, what: str) -> str:
    if ID_RE.fullmatch(value) is None:
        raise ProvisionError(f"{what} must match [A-Za-z0-9._-]{{1,64}}: {value!r}")
    return value


# -- provisioning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    role: Role
    rotated: bool  # True when an existing account got a new password


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class Provisioner:
    """Issues MQTT accounts in one password file and one ACL file, and records trackers in the registry."""

    def __init__(
        self, password_file: Path, acl_file: Path, db: Database | None = None, create_dirs: bool = False
    ) -> None:
        # Absolute, so messages name the files that were really written, whatever the working folder.
        self.password_file = Path(password_file).absolute()
        self.acl_file = Path(acl_file).absolute()
        self.db = db
        self.create_dirs = create_dirs

    def _folders_ready(self) -> None:
        """Make the files' folders only when asked to; a missing folder is otherwise a clear error (a typo
        in a path must not silently start a second, unused password file)."""
        for path in (self.password_file, self.acl_file):
            if self.create_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.parent.is_dir():
                raise ProvisionError(f"the folder {path.parent} does not exist: create it, or pass --create-dirs")

    def add_tracker(
        self, tracker_id: str, crate_id: str | None = None, rotate: bool = False, owntracks: bool = False
    ) -> Credentials:
        """A tracker account. With `owntracks`, TRACKER_ID is USER.DEVICE of the OwnTracks app: the MQTT
        user is USER (the app puts it in its topic) and it may publish only to owntracks/USER/DEVICE."""
        check_id(tracker_id, "tracker id")
        if crate_id is not None:
            check_id(crate_id, "crate id")
        if owntracks:
            user, device = owntracks_parts(tracker_id)
            creds = self._issue(user, "tracker", owntracks_acl(user, device), rotate)
        else:
            creds = self._issue(tracker_id, "tracker", tracker_acl(tracker_id), rotate)
        if self.db is not None:
            self._register(tracker_id, crate_id, creds)
        return creds

    def add_service_account(
        self, name: str = "kawal", rotate: bool = False, password: str | None = None
    ) -> Credentials:
        """Kawal's own read-only account. `password` sets a chosen one (e.g. the one in KAWAL_MQTT_URL)."""
        check_id(name, "account name")
        creds = self._issue(name, "service", service_acl(), rotate, password)
        if self.db is not None:
            self._audit("mqtt_account.provision", f"mqtt_account:{name}", {"role": "service",
                                                                          "rotated": creds.rotated})
        return creds

    def revoke(self, username: str) -> bool:
        """Remove an account from both files (the registry keeps the tracker's history)."""
        self._folders_ready()
        with locked(self.password_file):
            pw = PasswordFile.load(self.password_file)
            acl = AclFile.load(self.acl_file)
            removed = pw.remove(username) | acl.remove(username)
            if removed:
                write_atomic(self.password_file, pw.text())
                write_atomic(self.acl_file, acl.text())
        if removed and self.db is not None:
            self._audit("mqtt_account.revoke", f"mqtt_account:{username}", {})
        return removed

    def accounts(self) -> dict[str, Role | None]:
        """username -> role, for every account in the password file."""
        pw = PasswordFile.load(self.password_file)
        acl = AclFile.load(self.acl_file)
        return {u: role_of(acl.get(u)) for u in pw.users()}

    def tracker_ids_with_accounts(self) -> set[str]:
        """Tracker ids (native, or USER.DEVICE for OwnTracks) that an account in the files publishes for."""
        users = PasswordFile.load(self.password_file).users()
        acl = AclFile.load(self.acl_file)
        out: set[str] = set()
        for user in users:
            for line in acl.get(user) or []:
                m = re.fullmatch(r"\s*topic write (?:kawal/v1/([^/]+)/#|owntracks/([^/]+)/([^/]+))\s*", line)
                if m and m.group(1):
                    out.add(m.group(1))
                elif m:
                    out.add(f"{m.group(2)}.{m.group(3)}")
        return out

    def _issue(
        self, username: str, role: Role, acl_lines: list[str], rotate: bool, password: str | None = None
    ) -> Credentials:
        if password is not None and len(password) < 16:
            raise ProvisionError("a chosen password must have at least 16 characters")
        password = generate_password() if password is None else password
        self._folders_ready()
        with locked(self.password_file):
            pw = PasswordFile.load(self.password_file)
            acl = AclFile.load(self.acl_file)
            exists = username in pw.users()
            if exists and not rotate:
                raise ProvisionError(
                    f"{username!r} already has a password in {self.password_file}; "
                    "use --rotate to issue a new one (the old one stops working at the broker's next reload)"
                )
            existing_role = role_of(acl.get(username))
            if existing_role is not None and existing_role != role:
                raise ProvisionError(f"{username!r} is already a {existing_role} account")
            pw.set(username, hash_password(password))
            acl.set(username, acl_lines)
            # ACL first: a password without its ACL would be a user with no rights, never one with too many.
            write_atomic(self.acl_file, acl.text())
            write_atomic(self.password_file, pw.text())
        return Credentials(username, password, role, exists)

    def _register(self, tracker_id: str, crate_id: str | None, creds: Credentials) -> None:
        assert self.db is not None
        registry = TrackerRegistry(self.db)
        now = time.time()
        if crate_id is not None:
            registry.assign(tracker_id, crate_id, now)
        with self.db.write() as c:
            registry.ensure(c, [tracker_id], now)
            self._append_audit(c, "tracker.provision", f"tracker:{tracker_id}",
                               {"crate_id": crate_id, "rotated": creds.rotated})

    def _audit(self, action: str, subject: str, data: dict[str, object]) -> None:
        assert self.db is not None
        with self.db.write() as c:
            self._append_audit(c, action, subject, data)

    def _append_audit(
        self, conn: Connection, action: str, subject: str, data: dict[str, object]
    ) -> None:
        # The audit log is the chain of custody: who gave which tracker credentials, never the password.
        assert self.db is not None
        AuditLog(self.db).append(conn, _actor(), action, subject, data)
