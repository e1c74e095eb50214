"""The hub's MQTT side: store-and-forward publishing to the cloud broker.

``HubClient.publish`` writes the message to the SQLite outbox (hub/outbox.py) and
returns; it never touches the network and never fails because the broker is away.
A sender thread feeds the outbox to paho in FIFO order, keeping at most
``max_inflight`` messages un-acknowledged, and deletes a row when its PUBACK arrives.

Delivery guarantee: at least once, in order
-------------------------------------------
* On every (re)connect the client discards whatever paho still holds from the old
  connection and replays the outbox from its OLDEST row. One copy of the truth (the
  outbox) decides what is sent, so a message is never sent twice from two places.
* Within one connection messages go out in outbox order on one TCP stream, and what a
  dropped connection loses is always a suffix of what was sent on it. So the first
  time the broker receives each message follows the outbox order (per device and
  overall), across any number of reconnects and restarts of the hub process.
* Messages that reached the broker but whose PUBACK was lost with the connection are
  sent again after the reconnect: consumers see duplicates, never a reordering of
  first deliveries. (The cloud side dedupes; a state report is idempotent anyway.)
* A publish the broker refuses in its PUBACK (reason code >= 0x80, e.g. 0x87 "not
  authorised") will never succeed: it is logged, counted in ``rejected`` and removed,
  so one bad message cannot block the queue.

Sessions: the hub connects with a stable client id and clean_start=True. Nothing
outgoing depends on the broker's session (the outbox is the session), and commands
are not queued by the broker while the hub is away: after a reconnect the cloud's
shadow delta tells the hub what it missed, so stale commands are not replayed.

Threads: paho's network thread (loop_start) only records events in a queue and wakes
the sender; it never waits for SQLite. The sender thread does the SQLite reads and
deletes. ``on_message`` is called on the network thread and should return quickly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.outbox import Outbox, OutboxClosed

log = logging.getLogger("homestream.hub")

MessageCallback = Callable[[str, bytes], None]
Payload = bytes | bytearray | str | dict[str, Any] | list[Any] | None

_MAX_PAYLOAD = 268_435_455 - 65_536  # MQTT's remaining-length limit, less header room
_RECEIVE_MAXIMUM_DEFAULT = 65_535  # MQTT 5, when CONNACK carries no Receive Maximum


def encode_payload(payload: Payload) -> bytes:
    """dict/list -> compact JSON, str -> UTF-8, None -> empty (e.g. discovery removal)."""
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, dict | list):
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"payload must be bytes, str, dict or None, not {type(payload).__name__}")


def _check_level(name: str, value: str) -> None:
    if not value or any(c in value for c in "/+#\0"):
        raise ValueError(f"{name} {value!r} must be non-empty without '/', '+', '#'")


class HubClient:
    def __init__(
        self,
        *,
        home_id: str,
        username: str,
        password: str,
        host: str = "127.0.0.1",
        port: int = 1883,
        outbox: str | Path,
        client_id: str | None = None,
        tls_ca: str | Path | None = None,
        on_message: MessageCallback | None = None,
        keepalive: int = 30,
        max_inflight: int = 100,
    ) -> None:
        _check_level("home_id", home_id)
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.home_id = home_id
        self.host = host
        self.port = port
        self.client_id = client_id or f"hub-{home_id}"
        self.keepalive = keepalive
        self.on_message = on_message
        self._prefix = f"hub/{home_id}/"
        self._status_topic = f"{self._prefix}status"
        self._max_inflight = max_inflight
        self._outbox = Outbox(outbox)

        # Shared between the network thread and the sender. ``_gen`` counts
        # successful connections; it changes only under ``_pub_lock``, so a sender
        # holding that lock knows which connection its publish goes to.
        self._pub_lock = threading.Lock()
        self._gen = 0
        self._link_up = False
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drained = threading.Condition()
        self._sender: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._connect_failures = 0

        # Owned by the sender thread (and by stop() once the sender has ended).
        self._send_gen = 0
        self._window = max_inflight
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id, current connection
        self._cursor = 0  # highest outbox id handed to paho on the current connection
        self.rejected = 0  # messages the broker refused in a PUBACK (removed)

        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        c.username_pw_set(username, password)
        if tls_ca is not None:
            c.tls_set(ca_certs=str(tls_ca), cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(self._status_topic, "offline", qos=1, retain=True)
        # 2-4 s (random per hub) doubling to 30 s: after a broker restart thousands of hubs
        # do not reconnect at once, and the bridges (1-2 s) are back first. That matters:
        # Mosquitto 2.0 does not restore shared subscriptions on restart, so a report
        # that arrives before a bridge has re-subscribed has nobody to go to.
        c.reconnect_delay_set(min_delay=random.randint(2, 4), max_delay=30)
        # Our own window is the real limit; paho's leaves room for the status message.
        c.max_inflight_messages_set(max_inflight + 2)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self._client = c

    # -- public API -------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; reconnects forever (2-4 s .. 30 s backoff)."""
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped HubClient cannot be started again")
        self._started = True
        self._sender = threading.Thread(
            target=self._run_sender, name=f"hub-sender-{self.home_id}", daemon=True
        )
        self._sender.start()
        self._client.connect_async(self.host, self.port, self.keepalive, clean_start=True)
        self._client.loop_start()
        log.info(
            "hub client started",
            extra={
                "home_id": self.home_id,
                "client_id": self.client_id,
                "broker": f"{self.host}:{self.port}",
                "pending": len(self._outbox),
            },
        )

    def publish(
        self, subtopic: str, payload: Payload, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Queue ``hub/{home}/{subtopic}`` durably; sent in order when connected."""
        if not subtopic or subtopic.startswith("/") or any(c in subtopic for c in "+#\0"):
            raise ValueError(f"invalid subtopic {subtopic!r}")
        topic = self._prefix + subtopic
        if len(topic.encode("utf-8")) > 65_535:
            raise ValueError("topic too long")
        data = encode_payload(payload)
        if len(data) > _MAX_PAYLOAD:
            raise ValueError(f"payload of {len(data)} bytes is too large for MQTT")
        self._outbox.put(topic, data, retain, qos)
        self._wake.set()

    def pending(self) -> int:
        """Messages stored and not yet acknowledged by the broker."""
        return len(self._outbox)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until the outbox is empty; False if ``timeout`` seconds pass first."""
        with self._drained:
            return self._drained.wait_for(lambda: len(self._outbox) == 0, timeout)

    @property
    def connected(self) -> bool:
        return self._link_up

    @property
    def dropped(self) -> int:
        """Messages the outbox's bound policy dropped (see hub/outbox.py)."""
        return self._outbox.dropped

    def stop(self, *, offline: bool = True) -> None:
        """Publish retained "offline" (if connected and ``offline``), disconnect, stop.

        Messages still in the outbox stay there for the next start. With
        ``offline=False`` the status is left as it is (the broker discards the last
        will on a clean disconnect).
        """
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._wake.set()
        sender = self._sender
        if sender is not None:
            sender.join(timeout=10)
        if offline and self._link_up:
            with self._pub_lock:
                info = self._client.publish(self._status_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()
        self._link_up = False
        if sender is None or not sender.is_alive():
            with contextlib.suppress(OutboxClosed):
                self._process_events()  # PUBACKs that arrived after the sender stopped
        self._outbox.close()
        with self._drained:
            self._drained.notify_all()
        log.info(
            "hub client stopped",
            extra={"home_id": self.home_id, "pending": len(self._outbox)},
        )

    # -- paho callbacks (network thread: quick, no SQLite) -----------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning(
                "broker refused the hub's connection",
                extra={"home_id": self.home_id, "reason": str(reason_code)},
            )
            return
        receive_max = getattr(properties, "ReceiveMaximum", _RECEIVE_MAXIMUM_DEFAULT)
        with self._pub_lock:
            # Forget what paho kept from the previous connection: the sender replays
            # it from the outbox, in order, once it has seen this connection.
            client.drop_out_messages()
            self._gen += 1
            gen = self._gen
            self._link_up = True
            client.publish(self._status_topic, "online", qos=1, retain=True)
        opts = SubscribeOptions(qos=1)
        client.subscribe(
            [
                (f"{self._prefix}command/+", opts),
                (f"{self._prefix}pairing", opts),
                (f"{self._prefix}shadow/+/+/+", opts),
                (f"{self._prefix}config/+/+", opts),  # home documents for local control
            ]
        )
        self._connect_failures = 0
        self._events.put(("connected", gen, int(receive_max)))
        self._wake.set()
        log.info(
            "hub connected",
            extra={
                "home_id": self.home_id,
                "broker": f"{self.host}:{self.port}",
                "connection": gen,
                "receive_maximum": receive_max,
            },
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._connect_failures += 1
        n = self._connect_failures
        if n == 1 or n % 20 == 0:
            log.warning(
                "cloud broker unreachable, reports are queued",
                extra={
                    "home_id": self.home_id,
                    "broker": f"{self.host}:{self.port}",
                    "attempts": n,
                },
            )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_up = self._link_up
        self._link_up = False
        self._events.put(("disconnected", self._gen))
        self._wake.set()
        if was_up and not self._stopping.is_set():
            log.warning(
                "hub disconnected, will reconnect",
                extra={"home_id": self.home_id, "reason": str(reason_code)},
            )

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._events.put(("ack", self._gen, mid, reason_code))
        self._wake.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.warning(
                "broker refused a hub subscription",
                extra={"home_id": self.home_id, "reasons": refused},
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if not topic.startswith(self._prefix) or self.on_message is None:
            return
        try:
            self.on_message(topic[len(self._prefix) :], bytes(msg.payload))
        except Exception:
            log.exception(
                "hub on_message callback failed",
                extra={"home_id": self.home_id, "topic": topic},
            )

    # -- sender thread ----------------------------------------------------------------
    def _run_sender(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._process_events()
                self._fill_window()
            except OutboxClosed:
                return
            except Exception:
                log.exception("hub sender failed; retrying", extra={"home_id": self.home_id})
                self._stopping.wait(1.0)

    def _process_events(self) -> None:
        done: list[int] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            kind = event[0]
            if kind == "ack":
                _, gen, mid, rc = event
                if gen != self._send_gen:
                    continue
                item_id = self._inflight.pop(mid, None)
                if item_id is None:
                    continue  # the status message, published outside the outbox
                if rc.is_failure:
                    self.rejected += 1
                    log.warning(
                        "broker refused a hub message; dropping it",
                        extra={"home_id": self.home_id, "outbox_id": item_id, "reason": str(rc)},
                    )
                done.append(item_id)
            elif kind == "connected":
                # Every PUBACK of earlier connections was queued before this event, so
                # what is still in flight is lost: replay from the oldest row.
                _, gen, receive_max = event
                self._send_gen = gen
                self._inflight.clear()
                self._cursor = 0
                self._window = max(1, min(self._max_inflight, receive_max - 1))
                if done:
                    self._outbox.ack(done)
                    done = []
                backlog = len(self._outbox)
                if backlog:
                    log.info(
                        "replaying queued reports",
                        extra={"home_id": self.home_id, "pending": backlog, "connection": gen},
                    )
        if done:
            self._outbox.ack(done)
        with self._drained:
            self._drained.notify_all()

    def _fill_window(self) -> None:
        while not self._stopping.is_set():
            room = self._window - len(self._inflight)
            if room <= 0 or self._send_gen == 0:
                return
            items = self._outbox.peek(room, after=self._cursor)
            if not items:
                return
            for item in items:
                with self._pub_lock:
                    if self._gen != self._send_gen or not self._link_up:
                        return  # wait for the next connection's event
                    try:
                        info = self._client.publish(
                            item.topic, item.payload, qos=item.qos, retain=item.retain
                        )
                    except ValueError as exc:  # cannot be sent at all: never will be
                        log.error(
                            "unsendable hub message dropped",
                            extra={"home_id": self.home_id, "outbox_id": item.id, "err": str(exc)},
                        )
                        self._outbox.remove(item.id)
                        self._cursor = item.id
                        continue
                self._inflight[info.mid] = item.id
                self._cursor = item.id
            # PUBACKs may have arrived meanwhile: free room before the next batch.
            self._process_events()
