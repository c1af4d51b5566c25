"""Reading a partition from the stream: one ordered JetStream consumer per partition this worker holds.

An ordered consumer delivers the partition's messages one after the other from a given sequence, and the
client recreates it from the next sequence after a gap or an engine restart. It needs no acknowledgement:
how far a partition has been taken is the sequence saved with its detector snapshot (leases.save), and
the next owner starts right after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from cluster.bridge import received_at
from cluster.link import EngineLink
from cluster.messages import HEADER_CLOCK, StreamMessage
from cluster.subjects import HEADER_TOPIC, subject

log = logging.getLogger(__name__)

IDLE_HEARTBEAT_S = 1.0  # how soon a lost consumer (an engine restart) is noticed and recreated
PENDING_MSGS = 20000


class PartitionConsumers:
    def __init__(self, link: EngineLink, stream: str, submit: Callable[[StreamMessage], None]) -> None:
        self.link = link
        self.stream = stream
        self.submit = submit
        self._subs: dict[int, Any] = {}

    def start(self, part: int, token: int, after_seq: int) -> None:
        self.link.run(self._start(part, token, after_seq))

    def stop(self, part: int) -> None:
        sub = self._subs.pop(part, None)
        if sub is not None:
            try:
                self.link.run(sub.unsubscribe(), 10)
            except Exception:
                log.warning("partition %d: the consumer could not be removed (the engine is away)", part)

    def stop_all(self) -> None:
        for part in list(self._subs):
            self.stop(part)

    async def _start(self, part: int, token: int, after_seq: int) -> None:
        old = self._subs.pop(part, None)
        if old is not None:
            await old.unsubscribe()
        if after_seq > 0:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1)
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)

        async def on_msg(m: Msg) -> None:
            self.submit(_convert(m, part, token))

        self._subs[part] = await self.link.js.subscribe(
            subject(self.stream, part),
            stream=self.stream,
            cb=on_msg,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_S,
            config=config,
            pending_msgs_limit=PENDING_MSGS,
        )


def _convert(m: Msg, part: int, token: int) -> StreamMessage:
    headers = m.headers or {}
    seq = m.metadata.sequence.stream
    clock = headers.get(HEADER_CLOCK)
    if clock is not None:
        return StreamMessage("", b"", seq, 0, received_at(headers), partition=part, token=token, clock=float(clock))
    return StreamMessage(
        headers.get(HEADER_TOPIC, ""), m.data, seq, 0, received_at(headers), partition=part, token=token
    )
