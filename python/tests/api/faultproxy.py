"""A TCP fault proxy for the API tests: it sits between the API's database engine and the real
PostgreSQL server and can

* ``delay(seconds)``: hold every chunk, in both directions, for that long before passing it on;
* ``cut()``: close every live connection at once and refuse new ones (accepted, then reset) until
  ``restore()``, as a database restart or a failover looks from the client;
* ``stall()``: accept new connections but never answer them (a server that hangs), until
  ``restore()``;
* ``blackhole()``: go silent without closing anything: live connections keep accepting bytes in
  both directions and pass none of them on, new ones are accepted and never answered (a network
  that stopped delivering, a hung server or middlebox: no RST, no FIN), until ``restore()``,
  which then closes the silent connections (their byte streams lost data);
* ``cut_at(pattern, after=..., deliver=...)``: cut at one exact point of the wire protocol, the
  first time a connection that has sent ``after`` sends a message containing ``pattern`` (SQL
  text, e.g. ``b"COMMIT"`` after ``b"INSERT INTO uploads"``). With ``deliver=False`` that message
  never reaches the server; with ``deliver=True`` it does and the cut comes instead of the
  server's answer (the statement ran, its client never learns so): the two sides of an in-doubt
  COMMIT. ``blackhole_at`` is the same with ``blackhole()`` instead of ``cut()``.

Plain threads and sockets, no dependency. ``url(database_url)`` points a URL at the proxy.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


@dataclass
class _Trigger:
    pattern: bytes
    after: bytes | None
    deliver: bool
    action: str  # "cut" | "blackhole"
    fired: threading.Event = field(default_factory=threading.Event)


class _Link:
    """One proxied connection: the API's socket and ours to the server."""

    def __init__(self, client: socket.socket, server: socket.socket | None) -> None:
        self.client = client
        self.server = server
        self.armed = False  # the trigger's `after` was seen on this connection
        # A deliver=True trigger that fired here: cut instead of passing the next reply.
        self.drop_reply: _Trigger | None = None
        self.silent = False  # blackholed: read and discard, never forward, never close
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.server):
            if s is None:
                continue
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.links: set[_Link] = set()
        self.mode = "pass"  # pass | refuse | stall | blackhole
        self.delay_seconds = 0.0
        self.trigger: _Trigger | None = None
        self.trigger_lock = threading.Lock()
        self.accepted = 0
        self.refused = 0
        self.cut_links = 0
        self.silenced = 0  # connections made silent by blackhole()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self.thread.start()

    # ---- control ----

    def url(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def delay(self, seconds: float) -> None:
        self.delay_seconds = seconds

    def cut(self) -> None:
        """Closes every live connection; refuses new ones until ``restore()``."""
        with self.lock:
            self.mode = "refuse"
            links, self.links = list(self.links), set()
            self.cut_links += len(links)
        for link in links:
            link.close()

    def stall(self) -> None:
        """New connections are accepted and then never answered, until ``restore()``."""
        with self.lock:
            self.mode = "stall"

    def blackhole(self) -> None:
        """Live connections go silent (bytes accepted, never passed on, nothing closed); new ones
        are accepted and never answered; until ``restore()``."""
        with self.lock:
            self.mode = "blackhole"
            for link in self.links:
                link.silent = True
            self.silenced += len(self.links)

    def restore(self) -> None:
        with self.lock:
            self.mode = "pass"
            self.delay_seconds = 0.0
            dead = [link for link in self.links if link.server is None or link.silent]
            self.links -= set(dead)
        for link in dead:
            link.close()

    def cut_at(self, pattern: bytes, *, after: bytes | None = None, deliver: bool = False) -> threading.Event:
        """Arms a one-shot cut (see the module docs); the event is set when it fired."""
        return self._arm(_Trigger(pattern, after, deliver, "cut"))

    def blackhole_at(self, pattern: bytes, *, after: bytes | None = None,
                     deliver: bool = False) -> threading.Event:
        """Arms a one-shot ``blackhole()``, at the point ``cut_at`` would cut."""
        return self._arm(_Trigger(pattern, after, deliver, "blackhole"))

    def _arm(self, trigger: _Trigger) -> threading.Event:
        with self.lock:
            links = list(self.links)
        with self.trigger_lock:
            for link in links:
                link.armed = False  # `after` counts from now on, not from an earlier trigger
            self.trigger = trigger
        return trigger.fired

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()
        with self.lock:
            links, self.links = list(self.links), set()
        for link in links:
            link.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ----

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            mode = self.mode
            if mode == "refuse":
                self.refused += 1
                # Reset, not a polite close: what a client sees from a port nobody serves.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            if mode in ("stall", "blackhole"):
                with self.lock:
                    self.links.add(_Link(client, None))
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self.lock:
                self.links.add(link)
                self.accepted += 1
            for src, dst, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(link, src, dst, upstream), daemon=True).start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while not link.closed:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if self.delay_seconds:
                    time.sleep(self.delay_seconds)
                if link.closed:
                    break
                if link.silent:
                    continue
                if upstream:
                    if self._fires(link, data):
                        continue  # not delivered (the link is cut or silent now)
                elif link.drop_reply is not None:
                    self._fire_now(link.drop_reply)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.links.discard(link)
            link.close()

    def _fires(self, link: _Link, data: bytes) -> bool:
        """Whether the trigger fires on this client message (True: it was not delivered)."""
        with self.trigger_lock:
            t = self.trigger
            if t is None:
                return False
            rest = data
            if t.after is not None and not link.armed:
                at = data.find(t.after)
                if at < 0:
                    return False
                link.armed = True
                rest = data[at + len(t.after):]
            if t.pattern not in rest:
                return False
            self.trigger = None  # one shot
        if t.deliver:
            link.drop_reply = t
            return False
        self._fire_now(t)
        return True

    def _fire_now(self, t: _Trigger) -> None:
        t.fired.set()  # first: whoever sees the fault sees the event set
        if t.action == "cut":
            self.cut()
        else:
            self.blackhole()
