"""MQTT -> JetStream: the trackers' messages from the broker in front (Mosquitto) into the engine's stream.

Every worker runs one with its own persistent MQTT session, so a `kill -9` of any worker loses nothing:
the others bridge the same messages, and JetStream keeps the first copy of each (Nats-Msg-Id, see
subjects.message_id). A message is acknowledged to the broker only after JetStream acknowledged storing
it; while the engine is unreachable the broker keeps the messages, its inflight window holding back the
rest. One publisher per partition, pipelining up to WINDOW messages and falling back to one at a time
after a failure, keeps every tracker's messages in their MQTT order in the stream, also across retries.

Under the event clock (KAWAL_CLOCK=event: replays and simulations), the bridge also writes clock messages:
before a message into a partition, the latest event time among the messages received before it, when
that partition has not been told yet, and every CLOCK_EVERY_S to all partitions. A partition's engine so
sees the same clock at each of its messages as a single process seeing the whole feed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from cluster.link import EngineLink
from cluster.messages import HEADER_CLOCK
from cluster.subjects import (
    HEADER_MSG_ID,
    HEADER_RECEIVED,
    HEADER_TOPIC,
    message_id,
    partition_of,
    subject,
    tracker_of_topic,
)
from devices.decode import decode_message
from ingest.mqtt import InboundMessage, MqttConsumer
from kawal.metrics import Metrics
from kawal.settings import Settings

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.05
RETRY_MAX_S = 2.0
PUBLISH_TIMEOUT_S = 5.0
CLOCK_EVERY_S = 0.2
WINDOW = 256  # messages of one partition in flight to the engine at once


@dataclass(slots=True)
class _Out:
    payload: bytes
    headers: dict[str, str]
    msg: InboundMessage | None  # None for a clock message


class Bridge:
    def __init__(self, settings: Settings, mqtt_url: str, link: EngineLink, metrics: Metrics) -> None:
        self.settings = settings
        self.link = link
        self.metrics = metrics
        self.partitions = settings.cluster_partitions
        self.stream = settings.cluster_stream
        # Its own persistent session per worker, never a shared subscription: each bridge takes every message.
        # The session outlives the worker only as long as JetStream recognises the copies it would bridge
        # again; after that the other bridges have taken everything, and the broker need not queue for it.
        bridge_settings = settings.model_copy(
            update={
                "mqtt_client_id": f"{settings.mqtt_client_id}-bridge-{settings.worker_id}",
                "mqtt_share_group": None,
                "mqtt_session_expiry_s": int(settings.cluster_dedup_window_s),
            }
        )
        self.consumer = MqttConsumer(bridge_settings, mqtt_url, self._on_message, metrics)
        self._queues: dict[int, asyncio.Queue[_Out]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0  # messages this bridge put into the stream (copies JetStream dropped included)
        self.event_clock = settings.clock == "event"
        self._clock = -math.inf  # the latest event time among the messages received
        self._told: dict[int, float] = {}  # the clock each partition was last told

    def start(self) -> None:
        if self.event_clock:
            self.link.submit(self._clock_loop())
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop()
        for t in self._tasks:
            self.link.loop.call_soon_threadsafe(t.cancel)

    # paho's network thread: never block, hand over to the engine loop.
    def _on_message(self, msg: InboundMessage) -> None:
        self.link.loop.call_soon_threadsafe(self._enqueue, msg)

    def _queue(self, part: int) -> asyncio.Queue[_Out]:
        q = self._queues.get(part)
        if q is None:
            q = self._queues[part] = asyncio.Queue()
            self._tasks.append(asyncio.get_running_loop().create_task(self._publisher(part, q)))
        return q

    def _enqueue(self, msg: InboundMessage) -> None:
        part = partition_of(tracker_of_topic(msg.topic), self.partitions)
        q = self._queue(part)
        if self.event_clock:
            if self._clock > self._told.get(part, -math.inf):
                self._tell(part, q)
            try:
                readings = decode_message(msg.topic, msg.payload, time.time()).readings
            except Exception:  # the worker's decoder reports it; the clock just does not move
                readings = []
            for r in readings:
                if r.ts > self._clock and math.isfinite(r.ts):
                    self._clock = r.ts
        headers = {HEADER_TOPIC: msg.topic, HEADER_RECEIVED: repr(msg.received_at)}
        mid = message_id(msg.topic, msg.payload)
        if mid is not None:
            headers[HEADER_MSG_ID] = mid
        q.put_nowait(_Out(msg.payload, headers, msg))

    def _tell(self, part: int, q: asyncio.Queue[_Out]) -> None:
        t = self._clock
        self._told[part] = t
        headers = {HEADER_CLOCK: repr(t), HEADER_MSG_ID: f"clock-{part}-{t!r}", HEADER_RECEIVED: repr(time.time())}
        q.put_nowait(_Out(b"", headers, None))

    async def _clock_loop(self) -> None:
        """The clock reaches every partition, also those that get no more messages (the end of a feed)."""
        while True:
            await asyncio.sleep(CLOCK_EVERY_S)
            if self._clock == -math.inf:
                continue
            for part in range(self.partitions):
                if self._clock > self._told.get(part, -math.inf):
                    self._tell(part, self._queue(part))

    async def _publisher(self, part: int, q: asyncio.Queue[_Out]) -> None:
        subj = subject(self.stream, part)
        while True:
            batch = [await q.get()]
            while len(batch) < WINDOW and not q.empty():
                batch.append(q.get_nowait())
            await self._publish_in_order(subj, batch)
            msgs = [o.msg for o in batch if o.msg is not None]
            self.published += len(msgs)
            try:
                self.consumer.ack_many(msgs)
            except Exception:  # a lost ack only means a redelivery, which the message id absorbs
                log.exception("ack to the broker failed")

    async def _publish_in_order(self, subj: str, batch: list[_Out]) -> None:
        """Store the batch in its order. Pipelined on the one connection, whose messages the server takes in
        order; from the first that is not acknowledged on, one at a time, each waiting for its
        acknowledgement (the ones after it that were stored are dropped as duplicates)."""
        done = 0
        try:
            futures = [await self.link.js.publish_async(subj, o.payload, headers=o.headers) for o in batch]
            for f in futures:
                await asyncio.wait_for(f, PUBLISH_TIMEOUT_S)
                done += 1
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("bridging to the engine failed (%s); retrying one by one", e)
        for out in batch[done:]:
            delay = RETRY_MIN_S
            while True:
                try:
                    await self.link.js.publish(subj, out.payload, timeout=PUBLISH_TIMEOUT_S, headers=out.headers)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the engine is away or restarting: keep the order, try again
                    log.warning("bridging to the engine failed (%s); retrying in %.2fs", e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)


def received_at(headers: dict[str, str] | None) -> float:
    try:
        return float((headers or {})[HEADER_RECEIVED])
    except (KeyError, ValueError):
        return time.time()
