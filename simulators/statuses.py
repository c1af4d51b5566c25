"""Which trackers a publisher left `online`, so an interrupted run can say `offline` for them.

Native trackers publish a retained status. A run stopped midway (Ctrl-C) would otherwise leave a retained
`online` on the broker for every tracker it had started, and anyone subscribing later would see a fleet
that is long gone.
"""

from __future__ import annotations

from simulators.streams import Message


class RetainedStatuses:
    def __init__(self) -> None:
        self._online: dict[str, Message] = {}  # tracker -> its last retained status that was not offline

    def seen(self, msg: Message) -> None:
        """Note a message just published (only retained statuses matter)."""
        if msg.kind != "status" or not msg.retain:
            return
        if msg.payload == b"offline":
            self._online.pop(msg.tracker_id, None)
        else:
            self._online[msg.tracker_id] = msg

    def dropped(self, tracker_id: str) -> None:
        """The tracker's connection was cut: the broker published its `offline` Last Will."""
        self._online.pop(tracker_id, None)

    def offline_messages(self, at: float) -> list[Message]:
        """A retained `offline` for each tracker still `online`, at simulated time `at`."""
        return [
            Message(at, m.topic, b"offline", m.tracker_id, retain=True, kind="status") for m in self._online.values()
        ]
