"""The amqtt fallback broker, run by `kawal.broker.EmbeddedBroker` as `python -m kawal.broker_amqtt`.

It runs in its own process so the broker's event loop never competes with the service for the GIL.
amqtt 0.12 speaks MQTT 3.1.1 only. Two plugins make it fit Kawal's delivery guarantee:

- `AcceptAllAuth` accepts every client without marking it anonymous. amqtt's own AnonymousAuthPlugin marks
  every session anonymous, and amqtt never queues QoS 1 messages for an anonymous session while it is
  disconnected, which would defeat Kawal's persistent session.
- `SessionSnapshot` writes the persistent sessions (subscriptions, queued and unacknowledged messages) and
  the retained messages to a JSON file when the broker shuts down, and loads them at the next start.
  amqtt's own SessionDBPlugin needs SQLAlchemy, rewrites a session's whole queue for every message and never
  forgets a delivered one, so it is not used. A SIGKILL of this process loses what only lived in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker, BrokerContext, RetainedApplicationMessage
from amqtt.errors import BrokerError
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin
from amqtt.session import Session

READY_LINE = "KAWAL-BROKER-READY"
SNAPSHOT_NAME = "amqtt-sessions.json"
PR_SET_PDEATHSIG = 1
DRAIN_QUIET_S = 0.5
DRAIN_MAX_S = 5.0

log = logging.getLogger("kawal.broker_amqtt")


class AcceptAllAuth(BaseAuthPlugin):
    """Every client is accepted and none is anonymous, so persistent sessions queue while offline."""

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Session) -> bool | None:
        session.is_anonymous = False
        return True


def _b64(data: bytes | bytearray | None) -> str:
    return base64.b64encode(bytes(data or b"")).decode("ascii")


class SessionSnapshot(BasePlugin[BrokerContext]):
    """Saves persistent sessions and retained messages at shutdown; restores them at start."""

    @dataclass
    class Config:
        path: str = SNAPSHOT_NAME

    last_broadcast = 0.0  # event-loop time of the last message accepted for delivery (one broker per process)

    async def on_broker_message_broadcast(self, *, client_id: str, message: Any) -> None:
        SessionSnapshot.last_broadcast = asyncio.get_running_loop().time()

    @property
    def _path(self) -> Path:
        return Path(self.config.path)

    async def on_broker_post_start(self) -> None:
        path = self._path
        if not path.exists():
            return
        try:
            snap = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            # Keep the unreadable file for an operator; start empty rather than not at all.
            path.rename(path.with_suffix(".corrupt"))
            log.error("session snapshot %s unreadable (%s); moved aside", path, e)
            return
        n_msgs = 0
        for s in snap.get("sessions", []):
            cid = s["client_id"]
            await self.context.add_subscription(cid, None, None)
            for topic, qos in s.get("subscriptions", []):
                await self.context.add_subscription(cid, topic, int(qos))
            session = self.context.get_session(cid)
            if session is None:
                continue
            session.clean_session = False
            session.is_anonymous = False
            for topic, data, qos in s.get("messages", []):
                msg = RetainedApplicationMessage(None, topic, base64.b64decode(data), int(qos))
                session.retained_messages.put_nowait(msg)
                n_msgs += 1
        for topic, data, qos in snap.get("retained", []):
            self.context.retained_messages[topic] = RetainedApplicationMessage(
                None, topic, base64.b64decode(data), int(qos)
            )
        # Loaded: a later crash must not replay this old queue a second time.
        path.unlink()
        log.warning("restored %d sessions, %d queued messages", len(snap.get("sessions", [])), n_msgs)

    async def on_broker_pre_shutdown(self) -> None:
        sessions: list[dict[str, Any]] = []
        subs_by_client: dict[str, list[tuple[str, int]]] = {}
        for topic, entries in self.context.subscriptions.items():
            for sess, qos in entries:
                subs_by_client.setdefault(str(sess.client_id), []).append((topic, qos))
        for sess in list(self.context.sessions):
            if sess.clean_session in (None, True) or sess.is_anonymous or not sess.client_id:
                continue
            # Sent but not acknowledged first, then the queue of the disconnected session, in order.
            messages = [(m.topic, _b64(m.data), m.qos or 1) for m in sess.inflight_out.values()]
            while not sess.retained_messages.empty():
                m = sess.retained_messages.get_nowait()
                messages.append((m.topic, _b64(m.data), m.qos or 1))
            sessions.append(
                {
                    "client_id": sess.client_id,
                    "subscriptions": subs_by_client.get(str(sess.client_id), []),
                    "messages": messages,
                }
            )
        retained = [(t, _b64(m.data), m.qos or 0) for t, m in self.context.retained_messages.items()]
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"version": 1, "sessions": sessions, "retained": retained}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self._path)
        log.warning("saved %d sessions, %d queued messages", len(sessions), sum(len(s["messages"]) for s in sessions))


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid and os.getppid() != parent_pid:
        sys.exit(0)


async def _serve(host: str, port: int, workdir: Path, parent_pid: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent() -> None:
        # Belt and braces next to PDEATHSIG: a re-parented child shuts down within a second.
        while parent_pid and os.getppid() == parent_pid:
            await asyncio.sleep(1.0)
        stop.set()

    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "kawal.broker_amqtt.AcceptAllAuth": {},
            "kawal.broker_amqtt.SessionSnapshot": {"path": str(workdir / SNAPSHOT_NAME)},
        },
    }
    broker = Broker(config, loop=loop)
    await broker.start()
    print(f"{READY_LINE} {port}", flush=True)
    watchdog = asyncio.create_task(watch_parent())
    await stop.wait()
    watchdog.cancel()
    # Let messages already accepted reach the session queues before the snapshot is taken: amqtt hands them to
    # its broadcast loop on this event loop, so a short quiet spell after the last one (bounded) drains it.
    deadline = loop.time() + DRAIN_MAX_S
    while loop.time() < deadline and loop.time() - SessionSnapshot.last_broadcast < DRAIN_QUIET_S:
        await asyncio.sleep(0.05)
    await broker.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Kawal's embedded amqtt broker (MQTT 3.1.1)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--parent-pid", type=int, default=0)
    args = p.parse_args(argv)
    _die_with_parent(args.parent_pid)
    args.workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=str(args.workdir / "amqtt.log"),
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kawal.broker_amqtt").setLevel(logging.INFO)
    try:
        return asyncio.run(_serve(args.host, args.port, args.workdir, args.parent_pid))
    except (OSError, BrokerError) as e:
        # Typically the port is taken; the parent reads this and may retry on another port.
        print(f"KAWAL-BROKER-ERROR {e}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
