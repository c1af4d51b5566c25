"""Tracker provisioning: the registry entry, a strong MQTT password, Mosquitto's password and ACL files.

The password file is in the format `mosquitto_passwd` of Mosquitto 2.x writes, built here in Python so
no Mosquitto tools are needed:

    username:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt, iterations, 64)>

with 101 iterations and a 12-byte salt, as mosquitto_passwd uses. The ACL file gives each tracker write
access to its own `kawal/v1/{tracker_id}/#` only, and each service account read access to `kawal/v1/#`
and `owntracks/#`. A broker reloads both files on SIGHUP.

Both files are rewritten whole (temporary file, fsync, rename) under an advisory lock, so concurrent
`kawal devices` commands never interleave and Mosquitto never reads a half-written file. Lines this
module does not manage (other users, comments, other ACL blocks) are kept as they are.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import hashlib
import hmac
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.registry import TrackerRegistry
from kawal.audit import AuditLog
from kawal.trips import ID_RE
from storage import Connection, Database

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.x writes
SALT_BYTES = 12
HASH_BYTES = 64
PASSWORD_BYTES = 24  # 192 bits of entropy, 32 URL-safe characters
SERVICE_TOPICS = ("kawal/v1/#", "owntracks/#")
FILE_MODE = 0o640  # readable by the broker's group, never by everyone

Role = Literal["tracker", "service"]


class ProvisionError(ValueError):
    """A provisioning request that cannot be carried out (bad id, already provisioned, bad file)."""


def generate_password() -> str:
    """A random password, URL-safe so it can sit in mqtt://user:password@host URLs unescaped."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2.x's `$7$` PBKDF2-SHA512 hash of `password`."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Check a password against a `$7$` (Mosquitto 2.x) or `$6$` (Mosquitto 1.x, salted SHA-512) hash."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(digest))
            return hmac.compare_digest(got, digest)
        if len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            return hmac.compare_digest(hashlib.sha512(password.encode("utf-8") + salt).digest(), digest)
    except (ValueError, TypeError):
        return False
    return False


def check_id(value: str, what: str) -> str:
    if ID_RE.fullmatch(value) is None:
        raise ProvisionError(f"{what} must match [A-Za-z0-9._-]{{1,64}}: {value!r}")
    return value


# -- files ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An advisory lock on the folder of `path`, held while the file is read, changed and replaced. The
    folder, not a file: the file itself is replaced by a rename, and a lock file would be left behind."""
    folder = path.parent
    if not folder.is_dir():
        raise ProvisionError(f"the folder {folder} does not exist: create it, or pass --create-dirs")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` whole; keeps an existing file's mode (never readable by others), else FILE_MODE."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode) & ~0o007
    except FileNotFoundError:
        mode = FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class PasswordFile:
    """Mosquitto's password file: `user:hash` lines, order and unknown lines kept."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    @classmethod
    def load(cls, path: Path) -> PasswordFile:
        if not path.exists():
            return cls([])
        return cls(path.read_text().splitlines())

    def users(self) -> dict[str, str]:
        out = {}
        for line in self.lines:
            if line and not line.startswith("#") and ":" in line:
                user, hashed = line.split(":", 1)
                out[user] = hashed
        return out

    def set(self, user: str, hashed: str) -> None:
        entry = f"{user}:{hashed}"
        for i, line in enumerate(self.lines):
            if line.split(":", 1)[0] == user and not line.startswith("#"):
                self.lines[i] = entry
                return
        self.lines.append(entry)

    def remove(self, user: str) -> bool:
        before = len(self.lines)
        self.lines = [ln for ln in self.lines if ln.startswith("#") or ln.split(":", 1)[0] != user]
        return len(self.lines) != before

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


ACL_HEADER = [
    "# Mosquitto ACL for Kawal, maintained by `kawal devices`. Blocks of other users are kept as they are.",
    "# Each tracker writes only below kawal/v1/<its id>/; Kawal's service accounts read every tracker.",
]


@dataclass
class AclBlock:
    user: str
    lines: list[str]  # the block's own lines after `user <name>`


class AclFile:
    """Mosquitto's ACL file as a header and `user` blocks. `pattern` lines belong to the header."""

    def __init__(self, header: list[str], blocks: list[AclBlock]) -> None:
        self.header = header
        self.blocks = blocks

    @classmethod
    def load(cls, path: Path) -> AclFile:
        if not path.exists():
            return cls(list(ACL_HEADER), [])
        header: list[str] = []
        blocks: list[AclBlock] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line.startswith("user "):
                blocks.append(AclBlock(line[5:].strip(), []))
            elif line.startswith("pattern ") or not blocks:
                header.append(raw)
            elif line:
                blocks[-1].lines.append(raw)
        while header and not header[-1].strip():
            header.pop()  # text() puts one blank line before each block
        return cls(header, blocks)

    def set(self, user: str, lines: list[str]) -> None:
        for b in self.blocks:
            if b.user == user:
                b.lines = lines
                return
        self.blocks.append(AclBlock(user, lines))

    def remove(self, user: str) -> bool:
        before = len(self.blocks)
        self.blocks = [b for b in self.blocks if b.user != user]
        return len(self.blocks) != before

    def get(self, user: str) -> list[str] | None:
        return next((b.lines for b in self.blocks if b.user == user), None)

    def text(self) -> str:
        out = list(self.header)
        for b in self.blocks:
            out += ["", f"user {b.user}", *b.lines]
        return "\n".join(out).strip("\n") + "\n"


def tracker_acl(tracker_id: str) -> list[str]:
    return [f"topic write kawal/v1/{tracker_id}/#"]


def owntracks_parts(tracker_id: str) -> tuple[str, str]:
    """USER.DEVICE -> (USER, DEVICE): Kawal names an OwnTracks phone `{user}.{device}` (CONTRACT 1.3)."""
    user, sep, device = tracker_id.partition(".")
    if not sep or not user or not device:
        raise ProvisionError(f"an OwnTracks tracker id is USER.DEVICE, e.g. budi.phone: {tracker_id!r}")
    return user, device


def owntracks_acl(user: str, device: str) -> list[str]:
    # The app publishes its location to owntracks/USER/DEVICE and events/waypoints below it.
    return [f"topic write owntracks/{user}/{device}", f"topic write owntracks/{user}/{device}/#"]


def service_acl() -> list[str]:
    return [f"topic read {t}" for t in SERVICE_TOPICS]


def role_of(acl_lines: list[str] | None) -> Role | None:
    if acl_lines is None:
        return None
    return "service" if any(ln.strip().startswith("topic read kawal/v1/#") for ln in acl_lines) else "tracker"


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
