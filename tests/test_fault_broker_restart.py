"""The broker restarts (with persistence) while trackers publish at QoS 1: Kawal reconnects, resumes its
persistent session, and every reading the broker accepted is stored exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.faults import health, publish_through_outages, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, wait_for

N = 1500


def test_broker_restart_under_qos1_load_loses_nothing(
    kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url})
        db = srv.workdir / "kawal.db"
        pub = publisher(broker.port, client_id="fault-restart-pub")
        done = threading.Event()
        errors: list[BaseException] = []

        def load() -> None:
            try:
                for start in range(0, N, 50):  # a steady stream of QoS 1 batches
                    publish_through_outages(pub, "TRK-R1", range(start, start + 50))
                    time.sleep(0.02)
            except BaseException as e:
                errors.append(e)
            finally:
                done.set()

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        wait_for(lambda: stored(db, "TRK-R1") >= 200, 30, "the load to be flowing")
        broker.stop()  # SIGTERM: mosquitto writes its persistence file, Kawal's session with it
        wait_for(lambda: health(srv)[0] == 503, 30, "Kawal to notice the broker is gone")
        broker.start()
        restarted = time.monotonic()
        wait_for(lambda: health(srv)[0] == 200, 60, "Kawal to reconnect")
        print(f"Kawal subscribed again {time.monotonic() - restarted:.2f} s after the broker restarted")
        wait_for(done.is_set, 120, "the publisher to finish")
        assert not errors, errors
        wait_for(lambda: stored(db, "TRK-R1") == N, 60, f"all {N} readings stored")
        assert "session present: True" in srv.log(), "Kawal did not resume its persistent session"
        stop(pub)
        # Exactly once: every seq once (the dedup index would hide a second copy, so count distinct too).
        assert stored(db, "TRK-R1") == N
    finally:
        broker.stop()
