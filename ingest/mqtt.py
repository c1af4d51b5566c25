"""The MQTT consumer: paho-mqtt 2.x, QoS 1, persistent session, manual acknowledgement.

A message is acknowledged (PUBACK) only when the pipeline says its readings are stored, like Telegraf's
mqtt_consumer with its delivery tracking. Until then the broker keeps it in the session and redelivers it
after a reconnect or a restart; the readings table de-duplicates the second copy.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kawal.backoff import Backoff
from kawal.metrics import Metrics
from kawal.settings import Settings

log = logging.getLogger(__name__)

TOPIC_FILTERS = ("kawal/v1/+/telemetry", "kawal/v1/+/status", "owntracks/+/+")
# MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may have outstanding to us.
# Bounds the in-memory queue; large enough that acks (sent per stored batch) never starve the stream.
RECEIVE_MAXIMUM = 4096
KEEPALIVE_S = 30
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# Close after CONNECT this many times in a row without a CONNACK: a broker that silently drops MQTT 5.
_SILENT_DROPS_BEFORE_FALLBACK = 2
_UNSUPPORTED_PROTOCOL = (0x01, 0x84)
CONNACK_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 5.0  # a TCP connect to the broker before each session, so an absent broker is named at once
INVALID_TOPIC = "\ufffd"  # stands for a topic that is not UTF-8


@dataclass(slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float
    retain: bool = False
    session: int = 0  # which connection delivered it; acks for an older connection are not sent


def first_protocol(settings: Settings) -> str:
    """The MQTT version a consumer tries first: 5, unless 3.1.1 is asked for ("auto" may fall back later)."""
    return "3.1.1" if settings.mqtt_protocol == "3.1.1" else "5"


@runtime_checkable
class Consumer(Protocol):
    """What the pipeline and /healthz use of a consumer: `MqttConsumer` here, or `ingest.front.MqttFront`."""

    subscribed: threading.Event
    reason: str | None
    protocol: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ack(self, msg: InboundMessage) -> None: ...

    def ack_many(self, msgs: Sequence[InboundMessage]) -> None: ...


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    transport: str  # "tcp" or "websockets"
    path: str

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """`mqtt://[user:pass@]host:port` (also mqtts://, ws://, wss://, tcp://, ssl://)."""
        u = urllib.parse.urlsplit(url if "://" in url else f"mqtt://{url}")
        scheme = u.scheme.lower()
        if scheme not in ("mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss"):
            raise ValueError(f"unsupported MQTT URL scheme {scheme!r} in {url!r}")
        tls = scheme in ("mqtts", "ssl", "tls", "wss")
        ws = scheme in ("ws", "wss")
        default_port = {(False, False): 1883, (True, False): 8883, (False, True): 80, (True, True): 443}[(tls, ws)]
        if not u.hostname:
            raise ValueError(f"no host in MQTT URL {url!r}")
        return cls(
            host=u.hostname,
            port=u.port or default_port,
            username=urllib.parse.unquote(u.username) if u.username is not None else None,
            password=urllib.parse.unquote(u.password) if u.password is not None else None,
            tls=tls,
            transport="websockets" if ws else "tcp",
            path=u.path or "/mqtt",
        )


class MqttConsumer:
    """Subscribes to the tracker topics and hands every message to `on_message`, which must not block."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        on_message: Callable[[InboundMessage], None],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.address = BrokerAddress.parse(url)
        self._on_message = on_message
        self.metrics = metrics
        self.subscribed = threading.Event()
        self.connected = threading.Event()
        self.protocol = first_protocol(settings)
        self._auto = settings.mqtt_protocol == "auto"
        self._lock = threading.Lock()
        self._session = 0
        self._client: mqtt.Client | None = None
        self._stopping = threading.Event()
        self._fallback = threading.Event()
        self._silent_drops = 0
        self._connack_seen = False
        self._awaiting_connack_since: float | None = None
        self._supervisor: threading.Thread | None = None
        # Why the consumer is not subscribed (for /healthz); None once it is.
        self.reason: str | None = f"connecting to the MQTT broker at {self.address.host}:{self.address.port}"
        group = settings.mqtt_share_group
        self.topics = [f"$share/{group}/{t}" if group else t for t in TOPIC_FILTERS]

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; `subscribed` is set once the broker granted the subscriptions."""
        self._stopping.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="mqtt-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        self._fallback.set()  # wakes the supervisor
        if self._supervisor is not None:
            self._supervisor.join(15)
            self._supervisor = None

    def ack(self, msg: InboundMessage) -> None:
        """Acknowledge a stored message. QoS 0 needs none; a message from a previous connection is left
        alone: the broker redelivers it on the new one, with a packet id it may since have reused."""
        if msg.qos == 0:
            return
        with self._lock:
            client = self._client
            if client is None or msg.session != self._session:
                return
            client.ack(msg.mid, msg.qos)

    def ack_many(self, msgs: Sequence[InboundMessage]) -> None:
        """Acknowledge a stored batch through paho's public manual-ack API, one PUBACK per message.

        paho queues each PUBACK and wakes its network thread, which writes whatever is queued in one go;
        benchmarks/ingest.py measures this against one packed write per batch (see docs/ingest.md).
        """
        self.ack_ids([(m.mid, m.qos, m.session) for m in msgs])

    def ack_ids(self, ids: Sequence[tuple[int, int, int]]) -> None:
        """`ack_many` by (mid, qos, session): the MQTT front process gets its acknowledgements this way."""
        with self._lock:
            client = self._client
            if client is None:
                return
            current = self._session
            for mid, qos, session in ids:
                if qos == 1 and session == current:
                    client.ack(mid, 1)

    # -- connection management -----------------------------------------------------------------------------

    def _wait_reachable(self) -> bool:
        """Connect a plain TCP socket until the broker answers, saying at once why not and retrying with
        backoff. paho would retry silently; an operator with a wrong KAWAL_MQTT_URL needs to see it."""
        a = self.address
        backoff = Backoff(RECONNECT_MIN_S, RECONNECT_MAX_S)
        while not self._stopping.is_set():
            try:
                with socket.create_connection((a.host, a.port), timeout=PROBE_TIMEOUT_S) as sock:
                    if a.tls:  # a wrong CA or an expired certificate is named here, not as "connection lost"
                        self._tls_context().wrap_socket(sock, server_hostname=a.host).close()
                return True
            except OSError as e:
                delay = backoff.next()
                self.reason = f"{describe_connect_error(e)} to {a.host}:{a.port}, retrying"
                log.warning("%s in %.0fs", self.reason, delay)
                self._stopping.wait(delay)
        return False

    def _tls_context(self) -> ssl.SSLContext:
        """The same verification as the paho client's tls_set: the CA file (else the system's CAs), the host
        name, and the client certificate if one is set."""
        s = self.settings
        ctx = ssl.create_default_context(cafile=s.mqtt_ca_file)
        if s.mqtt_cert_file:
            ctx.load_cert_chain(s.mqtt_cert_file, s.mqtt_key_file)
        return ctx

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            if not self._wait_reachable():
                break
            client = self._new_client()
            with self._lock:
                self._client = client
            a = self.address
            props = None
            if self.protocol == "5":
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
                props.ReceiveMaximum = RECEIVE_MAXIMUM
            log.info(
                "connecting to mqtt %s:%s as %r (MQTT %s)",
                a.host,
                a.port,
                self.settings.mqtt_client_id,
                self.protocol,
            )
            if self.protocol == "5":
                client.connect_async(a.host, a.port, KEEPALIVE_S, clean_start=False, properties=props)
            else:
                client.connect_async(a.host, a.port, KEEPALIVE_S)
            client.loop_start()
            while not self._fallback.wait(0.25):
                if self._silent_broker(client):
                    log.warning("no CONNACK to an MQTT 5 CONNECT within %.0fs", CONNACK_TIMEOUT_S)
                    self._fallback.set()
            with contextlib.suppress(Exception):  # already closed
                client.disconnect()
            client.loop_stop()
            self._fallback.clear()
            with self._lock:
                self._client = None
                self._session += 1
            self.connected.clear()
            self.subscribed.clear()
            self.metrics.mqtt_connected.set(0)
            if not self._stopping.is_set():
                log.warning("broker refused MQTT 5; falling back to MQTT 3.1.1")
                self.protocol = "3.1.1"

    def _silent_broker(self, client: mqtt.Client) -> bool:
        """A connected socket but no CONNACK for a while: some 3.1.1-only brokers (amqtt) never answer
        an MQTT 5 CONNECT that carries properties."""
        since = self._awaiting_connack_since
        return (
            self._auto
            and self.protocol == "5"
            and since is not None
            and time.monotonic() - since > CONNACK_TIMEOUT_S
            and client.socket() is not None
        )

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._awaiting_connack_since = time.monotonic()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._awaiting_connack_since = None
        a = self.address
        self.reason = f"cannot connect to {a.host}:{a.port}, retrying"
        log.warning("mqtt: %s", self.reason)

    def _new_client(self) -> mqtt.Client:
        a = self.address
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.mqtt_client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            transport=a.transport,  # type: ignore[arg-type]
        )
        client.manual_ack_set(True)  # PUBACK only once stored: ack_many, called by the pipeline
        client.suppress_exceptions = True
        if a.username is not None:
            client.username_pw_set(a.username, a.password)
        if a.tls:
            s = self.settings
            # The broker's certificate is always verified: against KAWAL_MQTT_CA_FILE, else the system's CAs.
            client.tls_set(
                ca_certs=s.mqtt_ca_file,
                certfile=s.mqtt_cert_file,
                keyfile=s.mqtt_key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        if a.transport == "websockets":
            client.ws_set_options(path=a.path)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_msg
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connack_seen = True
        self._awaiting_connack_since = None
        if rc.is_failure:
            if self._auto and self.protocol == "5" and rc.value in _UNSUPPORTED_PROTOCOL:
                self._fallback.set()
                return
            self.reason = f"the MQTT broker at {self.address.host}:{self.address.port} refused the connection: {rc}"
            log.error("%s", self.reason)
            return
        with self._lock:
            self._session += 1
        self._silent_drops = 0
        self.connected.set()
        self.metrics.mqtt_connected.set(1)
        log.info("connected to mqtt (MQTT %s, session present: %s)", self.protocol, flags.session_present)
        if self.protocol == "5":
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(t, opts) for t in self.topics])
        else:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self._lock:
            self._session += 1
        connack_seen, self._connack_seen = self._connack_seen, False
        self._awaiting_connack_since = None
        self.connected.clear()
        self.subscribed.clear()
        self.metrics.mqtt_connected.set(0)
        self.reason = f"connection to the MQTT broker at {self.address.host}:{self.address.port} lost, reconnecting"
        if self._stopping.is_set() or self._fallback.is_set():
            return
        if not connack_seen and self._auto and self.protocol == "5":
            self._silent_drops += 1
            if self._silent_drops >= _SILENT_DROPS_BEFORE_FALLBACK:
                self._fallback.set()
                return
        log.warning("mqtt connection lost (%s); reconnecting", rc)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        refused = [(t, rc) for t, rc in zip(self.topics, rcs, strict=False) if rc.is_failure]
        if refused:
            log.error("mqtt broker refused subscriptions: %s", refused)
            return
        self.reason = None
        self.subscribed.set()
        log.info("subscribed to %s", self.topics)

    def _on_msg(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        try:
            topic = m.topic
        except UnicodeDecodeError:
            # MQTT requires UTF-8 topics and brokers enforce it; should one slip through, it decodes to
            # no tracker and is counted as a rejection. Its mid is still acknowledged after that.
            topic = INVALID_TOPIC
        payload = m.payload if type(m.payload) is bytes else bytes(m.payload)
        try:
            self._on_message(InboundMessage(topic, payload, m.mid, m.qos, time.time(), bool(m.retain), self._session))
        except Exception:  # never let a bug kill paho's network thread
            log.exception("on_message failed for %r", topic)


def describe_connect_error(e: OSError) -> str:
    """A TCP connect failure in a few words: "connection refused", "timed out", "unknown host"..."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS handshake failed ({e.reason or e})"
    if isinstance(e, TimeoutError):
        return "connection timed out"
    if isinstance(e, socket.gaierror):
        return "unknown host"
    return (e.strerror or type(e).__name__).lower()
