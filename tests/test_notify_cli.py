"""`kawal notify add/list/test/remove` against a real database and a real receiver."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from kawal.cli import cli
from tests.notify_helpers import Receiver, verify


def _kawal(tmp: Path, *args: str) -> Result:
    """`kawal notify ...` through click, in this process (as a shell would run it, minus the start-up)."""
    return CliRunner().invoke(cli, ["notify", *args], env={"KAWAL_DB": str(tmp / "kawal.db")})


def test_add_list_test_remove(tmp_path: Path) -> None:
    from storage import open_database

    open_database(tmp_path / "kawal.db").close()  # a migrated store, as `kawal serve` leaves it
    receiver = Receiver().start()
    try:
        added = _kawal(
            tmp_path,
            "add",
            "ppk-diwek",
            "--webhook",
            receiver.url,
            "--type",
            "seal_break",
            "--kecamatan",
            "Diwek",
            "--escalate-after-min",
            "15",
        )
        assert added.exit_code == 0, added.stderr
        secret = added.stdout.strip()
        assert len(secret) >= 32 and "created" in added.stderr
        assert (
            _kawal(tmp_path, "add", "mail", "--email", "ketua@example.org", "--min-severity", "critical").exit_code == 0
        )
        bad = _kawal(tmp_path, "add", "bad", "--email", "not-an-address")
        assert bad.exit_code != 0 and "not an email address" in bad.stderr

        listed = [json.loads(line) for line in _kawal(tmp_path, "list", "--json").stdout.splitlines()]
        assert [(c["name"], c["kind"]) for c in listed] == [("mail", "email"), ("ppk-diwek", "webhook")]
        assert listed[1]["kecamatan"] == ["Diwek"] and listed[1]["escalate_after_min"] == 15
        assert secret not in json.dumps(listed)

        sent = _kawal(tmp_path, "test", "ppk-diwek")
        assert sent.exit_code == 0, sent.stderr
        (got,) = receiver.events()
        assert got.event == "test" and got.alert["details"]["test"] is True
        assert verify(secret, got.body, got.headers["X-Kawal-Signature"])

        receiver.stop()
        failed = _kawal(tmp_path, "test", "ppk-diwek")
        assert failed.exit_code == 1 and "NOT delivered" in failed.stderr

        assert _kawal(tmp_path, "remove", "ppk-diwek").exit_code == 0
        assert _kawal(tmp_path, "remove", "ppk-diwek").exit_code != 0
        assert [json.loads(x)["name"] for x in _kawal(tmp_path, "list", "--json").stdout.splitlines()] == ["mail"]
    finally:
        receiver.stop()
