"""Mosquitto's password and ACL files, read and written in Python (no Mosquitto tools needed).

The password file is in the format `mosquitto_passwd` of Mosquitto 2.x writes:

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
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
