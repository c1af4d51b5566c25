"""The engine for cluster mode, measured: NATS JetStream vs RabbitMQ, on this machine, from Python.

    python -m benchmarks.engines [--messages 20000] [--size 200] [--nats URL]
                                 [--amqp amqp://guest:guest@127.0.0.1:5672/%2F]

Without --nats it starts a private nats-server (Debian `nats-server`) on a free port. A RabbitMQ that
cannot be reached is reported and skipped.

Each engine gets the same messages (a tracker-sized JSON body) and has to take them durably:
  JetStream  a file stream (one replica), a publish per message waiting for its acknowledgement (what the
             bridge does, to keep each tracker's order), and pipelined publishes; then an ordered consumer
             reads the stream back from a sequence, as a partition's new owner does after a failover.
  RabbitMQ   a quorum queue, a publish per message waiting for its publisher confirm (pika's blocking
             channel); then a consumer with prefetch 1,000 and batched acks. A quorum queue forgets what was
             acknowledged, so there is no second read from an offset: that needs RabbitMQ Streams.
Each run uses its own stream or queue and deletes it afterwards. The last line is the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import pika
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from cluster.natsd import PrivateNats


def body(size: int, i: int) -> bytes:
    head = json.dumps({"ts": 1732060800.0 + i, "seq": i, "lat": -7.546, "lon": 112.233, "seal": "closed"})
    return (head + " " * max(0, size - len(head))).encode()


async def jetstream(url: str, n: int, size: int) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    name = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"bench.{name}.*"], storage=StorageType.FILE))
    out: dict[str, float] = {}
    try:
        subj = f"bench.{name}.0"
        t0 = time.perf_counter()
        for i in range(n):
            await js.publish(subj, body(size, i), headers={"Nats-Msg-Id": f"a{i}"})
        out["publish_acked_each_per_s"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        futures = []
        for i in range(n):
            futures.append(await js.publish_async(subj, body(size, i), headers={"Nats-Msg-Id": f"b{i}"}))
            if len(futures) >= 1000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
        out["publish_pipelined_per_s"] = n / (time.perf_counter() - t0)
        got = 0
        done = asyncio.Event()

        async def on_msg(m: Any) -> None:
            nonlocal got
            got += 1
            if got == n:
                done.set()

        t0 = time.perf_counter()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=n + 1)
        sub = await js.subscribe(subj, stream=name, cb=on_msg, ordered_consumer=True, config=config)
        await asyncio.wait_for(done.wait(), 300)
        out["replay_from_sequence_per_s"] = n / (time.perf_counter() - t0)
        await sub.unsubscribe()
    finally:
        await js.delete_stream(name)
        await nc.close()
    return out


def rabbitmq(url: str, n: int, size: int) -> dict[str, float]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    q = f"bench-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
    out: dict[str, float] = {}
    try:
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        t0 = time.perf_counter()
        for i in range(n):
            ch.basic_publish("", q, body(size, i), props, mandatory=True)
        out["publish_confirmed_each_per_s"] = n / (time.perf_counter() - t0)
        ch.basic_qos(prefetch_count=1000)
        got = 0
        t0 = time.perf_counter()
        for method, _, _ in ch.consume(q, inactivity_timeout=30):
            if method is None:
                break
            got += 1
            if got % 500 == 0 or got == n:
                ch.basic_ack(method.delivery_tag, multiple=True)
            if got == n:
                break
        out["consume_per_s"] = got / (time.perf_counter() - t0)
        ch.cancel()
    finally:
        ch.queue_delete(q)
        conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--nats", help="a NATS server with JetStream (default: a private nats-server)")
    p.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    a = p.parse_args(argv)
    result: dict[str, Any] = {"messages": a.messages, "size": a.size}
    with tempfile.TemporaryDirectory(prefix="kawal-bench-engines-") as tmp:
        private = None if a.nats else PrivateNats(Path(tmp)).start()
        try:
            url = a.nats or (private.url if private else "")
            result["jetstream"] = {k: round(v) for k, v in asyncio.run(jetstream(url, a.messages, a.size)).items()}
        finally:
            if private is not None:
                private.stop()
    print("JetStream:", result["jetstream"], flush=True)
    try:
        result["rabbitmq_quorum"] = {k: round(v) for k, v in rabbitmq(a.amqp, a.messages, a.size).items()}
        print("RabbitMQ quorum queue:", result["rabbitmq_quorum"], flush=True)
    except pika.exceptions.AMQPConnectionError as e:
        result["rabbitmq_quorum"] = None
        print(f"RabbitMQ quorum queue: not reachable at {a.amqp} ({e!r}); skipped", flush=True)
    result["loadavg"] = os.getloadavg()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
