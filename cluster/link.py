"""The worker's connection to the engine (NATS JetStream), on an asyncio loop in a thread of its own.

The rest of Kawal is threaded; `run(coro)` hands a coroutine to the loop and waits for its result. The
client reconnects by itself for as long as the worker runs; the stream is created when missing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from cluster.subjects import stream_subjects
from kawal.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
RECONNECT_WAIT_S = 0.5


class EngineLink:
    def __init__(self, settings: Settings) -> None:
        assert settings.cluster_url is not None
        self.settings = settings
        self.url = settings.cluster_url
        self.stream = settings.cluster_stream
        self.loop = asyncio.new_event_loop()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, name="kawal-engine", daemon=True)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "not connected"
        return self._js

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the engine loop from any other thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        self.run(self._connect(), timeout)

    async def _connect(self) -> None:
        async def on_disconnect() -> None:
            self.connected.clear()
            log.warning("engine connection lost; reconnecting")

        async def on_reconnect() -> None:
            self.connected.set()
            log.info("engine connection back")

        async def on_error(e: Exception) -> None:
            log.debug("engine client: %s", e)

        self._nc = await nats.connect(
            self.url,
            name=f"kawal-{self.settings.worker_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            allow_reconnect=True,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
        self._js = self._nc.jetstream(timeout=10.0)
        await self.ensure_stream()
        self.connected.set()

    async def ensure_stream(self) -> None:
        s = self.settings
        config = StreamConfig(
            name=self.stream,
            subjects=stream_subjects(self.stream),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=s.cluster_stream_max_age_s,
            duplicate_window=s.cluster_dedup_window_s,
        )
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(config)
            log.info("created the engine stream %s", self.stream)

    def stop(self) -> None:
        if self._nc is not None:
            try:
                self.run(self._nc.close(), 10)
            except Exception:
                log.exception("closing the engine connection")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
