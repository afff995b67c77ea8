"""The HTTP server of the box (`tablebox serve`, `tablebox demo`) and of the relay (`tablebox relay serve`): uvicorn
with httptools, inside bounds that a hostile client cannot get around (issue #13).

uvicorn alone bounds nothing a client controls before its request reaches the app: a header line that never ends
grows the parser's buffer without limit (50 MB of `X-Big:` made 50 MB of RSS per connection), and a connection
that sends nothing, half a head or half a body stays open forever, until the process runs out of file
descriptors and every accept fails, orders and /healthz alike. Here:

- **Our own accept loop** (`Acceptor`) takes a connection only when there is room for it: at most `cap`
  connections, `cap` below the process's file limit (the soft RLIMIT_NOFILE read at start, minus `RESERVED_FDS` for
  the database, logs and printers), so accept never meets EMFILE. (uvloop's own server accepts everything the
  kernel queued in one go, before any of our code runs; at EMFILE libuv resets the rest.) When full, the oldest
  *idle* connection is closed to make room (one waiting for a request: nothing sent yet, a keep-alive between
  requests, or a head still arriving; as nginx reuses idle keep-alive connections when it runs out), so a phone
  still gets in while hundreds of connections sit idle. A request the app is handling (an order, a long-poll, an
  event stream) is never closed for room: with no idle connection left the newcomer gets `503
  too_many_connections` at once (`Retry-After: 1`) and is closed.
- **A cap per address** (`max_connections_per_address`): a connection beyond it gets the same 503 at once.
  Addresses in `Limits.exempt` (the relay's trusted proxies, which carry everyone) are not capped.
- **The head** (request line and headers) may take at most `max_header_bytes` (431 beyond, then closed: the parser
  never holds more) and `header_timeout` seconds, from the accept for a new connection (closed without a word if
  nothing came, 408 if part of a head did) and from its first bytes for the next request on a kept-alive one.
- **The body** must arrive within `body_timeout` seconds of the head (408, closed; the app sees a disconnect).
- **Idle keep-alive**: a connection with no new request `idle_timeout` seconds after its last answer is closed
  (uvicorn's own timer).

Refusals and timeouts are counted and logged at most every 10 s (`http.limited`), never one line per connection.
The choice and its cost against plain uvicorn are measured by `bench/run.py --http` (README, Speed).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import logger as uvicorn_logger

from appliance.errors import ConfigError

log = structlog.get_logger("appliance.serving")

# File descriptors kept out of the connection cap: the store (database, WAL and shared-memory files for each of the
# reader and writer connections), the log stream, the sd_notify socket, the listening socket, the event loop's own
# descriptors, the demo's virtual printers, the relay's PostgreSQL connections. A running `tablebox serve` holds
# about 30 besides its connections.
RESERVED_FDS = 128
# What one open connection costs the process besides a head in progress (protocol, transport, parser, buffers),
# measured as RSS over 1,100 idle connections (tests/appliance/test_serving.py checks the figure stays above it).
CONNECTION_BYTES = 16 * 1024
# The process before any connection (a store's web server after load is about 65 MB, the relay about 60 MB).
BASE_BYTES = 128 * 1024 * 1024
ACCEPT_BATCH = 64  # connections accepted per wake-up of the listening socket, so requests in flight get turns too
REPORT_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 16_384
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 0  # 0: as many as the file limit allows (soft RLIMIT_NOFILE - RESERVED_FDS)
    max_connections_per_address: int = 64  # 0: no cap per address
    exempt: tuple[str, ...] = ()  # addresses or networks not capped per address ("*": all)

    @classmethod
    def from_settings(cls, settings: LimitSettings, exempt: Iterable[str] = ()) -> Limits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            idle_timeout=settings.idle_timeout_seconds,
            max_connections=settings.max_connections,
            max_connections_per_address=settings.max_connections_per_address,
            exempt=tuple(part.strip() for part in exempt if part.strip()),
        )


class LimitSettings(Protocol):
    """The settings both the box (appliance/settings.py) and the relay (sync/relay/settings.py) declare."""

    @property
    def max_header_bytes(self) -> int: ...
    @property
    def header_timeout_seconds(self) -> float: ...
    @property
    def body_timeout_seconds(self) -> float: ...
    @property
    def idle_timeout_seconds(self) -> float: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def max_connections_per_address(self) -> int: ...


def file_limit() -> int:
    """The process's soft limit on open files (what accept() meets), read now."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def connection_cap(limits: Limits, nofile: int) -> int:
    """Open connections allowed under a file limit of `nofile`: the setting, but never closer to the limit than
    RESERVED_FDS. A limit that leaves no real room is refused (exit 2) rather than served badly."""
    room = nofile - RESERVED_FDS
    if room < 16:
        raise ConfigError(
            f"the file limit ({nofile} open files) leaves no room for connections: the server keeps {RESERVED_FDS} "
            f"for the database and logs; raise it (`ulimit -n`, or LimitNOFILE= in the unit)"
        )
    return min(limits.max_connections, room) if limits.max_connections else room


def memory_needed(limits: Limits, cap: int) -> int:
    """Bytes the process needs with `cap` connections open, each holding a head just under the cap: what a unit's
    MemoryMax= must allow (tests/test_systemd_units.py checks it for every server unit)."""
    return BASE_BYTES + cap * (limits.max_header_bytes + CONNECTION_BYTES)


def refusal(status: int, code: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, with the API's error shape as its body."""
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    reason = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n"
    ).encode() + body


TOO_LARGE = refusal(431, "headers_too_large", "The request's headers are too large.")
TIMED_OUT = refusal(408, "request_timeout", "The request took too long to arrive.")
NO_ROOM = refusal(503, "too_many_connections", "Too many connections. Try again in a moment.", "retry-after: 1\r\n")


class Guard:
    """What every connection of one server shares: the counts, the idle connections (oldest first) and the
    refusal counters."""

    def __init__(self, limits: Limits, cap: int) -> None:
        self.limits = limits
        self.cap = cap
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.idle: dict[GuardedProtocol, None] = {}  # insertion order: the oldest idle connection first
        self.exempt_all = "*" in limits.exempt
        self.exempt = [network for network in map(ip_network, limits.exempt) if network is not None]
        self.exempt_names = {e for e in limits.exempt if e != "*" and ip_network(e) is None}  # e.g. a unix socket
        self.events: Counter[str] = Counter()
        self.reported = 0.0
        self.report_pending = False

    def exempted(self, address: str) -> bool:
        if self.exempt_all or address in self.exempt_names:
            return True
        if not self.exempt:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.exempt)

    def admit(self, address: str) -> str | None:
        """Take a slot for a new connection from `address`; None when admitted, else why not."""
        per_address = self.limits.max_connections_per_address
        if per_address and self.by_address[address] >= per_address and not self.exempted(address):
            return "per_address"
        if self.open >= self.cap and not self.evict():
            return "full"
        self.open += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        left = self.by_address[address] - 1
        if left > 0:
            self.by_address[address] = left
        else:
            del self.by_address[address]

    def evict(self) -> bool:
        """Close the oldest idle connection (its slot is free at once); False when none is idle."""
        if not self.idle:
            return False
        victim = next(iter(self.idle))
        victim.close_for_room()
        self.note("evicted_idle")
        return True

    def note(self, event: str) -> None:
        """Count a refusal or a timeout; log the counts at once, then at most every REPORT_SECONDS."""
        self.events[event] += 1
        if self.report_pending:
            return
        wait = self.reported + REPORT_SECONDS - time.monotonic()
        if wait <= 0:
            self.report()
        else:
            self.report_pending = True
            asyncio.get_running_loop().call_later(wait, self.report)

    def report(self) -> None:
        self.report_pending = False
        self.reported = time.monotonic()
        if self.events:
            log.warning("http.limited", **dict(self.events), open=self.open, cap=self.cap)
            self.events.clear()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the head capped in bytes and time, the body in time, and its slot in the
    Guard taken at accept and given back when the connection is gone."""

    guard: Guard  # set on the subclass each server makes (make_protocol_class)

    def __init__(self, *args: Any, address: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = address
        self.holds_slot = True
        self.reading_head = True  # waiting for (the rest of) a request's head
        self.head_bytes = 0
        self.heads_done = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.idle[self] = None
        self.head_timer = self.loop.call_later(self.guard.limits.header_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timers()
        self.give_back_slot()
        super().connection_lost(exc)

    def give_back_slot(self) -> None:
        self.guard.idle.pop(self, None)
        if self.holds_slot:
            self.holds_slot = False
            self.guard.release(self.address)

    def close_for_room(self) -> None:
        self.give_back_slot()
        self.cancel_timers()
        self.transport.close()

    def cancel_timers(self) -> None:
        for timer in (self.head_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.body_timer = None

    # -- the head: bytes and time --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        while self.reading_head:
            room = self.guard.limits.max_header_bytes - self.head_bytes
            if len(data) <= room:
                break
            # Feed only what the head may still take: it must end inside these bytes, or the parser would keep
            # them (httptools concatenates an unfinished header value without limit).
            heads = self.heads_done
            part, data = data[:room], data[room:]
            self.head_bytes += len(part)
            super().data_received(part)
            if self.transport.is_closing():
                return
            if self.heads_done == heads:
                self.refuse(TOO_LARGE, "headers_too_large")
                return
        if self.reading_head:
            self.head_bytes += len(data)
        super().data_received(data)
        # Timers only for what is still on its way when this read is parsed: a request that came whole (the usual
        # case) arms none. A keep-alive connection that sends nothing is uvicorn's keep-alive timer's.
        if self.reading_head:
            if self.head_bytes and self.head_timer is None:
                self.head_timer = self.loop.call_later(self.guard.limits.header_timeout, self.head_timed_out)
        elif self.body_timer is None:
            self.body_timer = self.loop.call_later(self.guard.limits.body_timeout, self.body_timed_out)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.heads_done += 1
        self.guard.idle.pop(self, None)
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
        self.reading_head = True
        self.head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or not self.cycle.response_complete or not self.reading_head:
            return  # closing, or a pipelined request is in hand
        self.guard.idle[self] = None  # idle again: to the end of the line

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.reading_head:
            return
        if self.head_bytes:
            self.refuse(TIMED_OUT, "header_timeout")
        else:
            self.guard.note("idle_closed")
            self.transport.close()

    def body_timed_out(self) -> None:
        self.body_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(TIMED_OUT)
        if cycle is not None:  # the app's receive() now gets http.disconnect, and its send() goes nowhere
            cycle.disconnected = True
            cycle.message_event.set()
        self.guard.note("body_timeout")
        self.transport.close()

    def refuse(self, answer: bytes, event: str) -> None:
        self.guard.note(event)
        self.transport.write(answer)
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        pass  # an Upgrade header (no WebSocket here) is served as plain HTTP: not worth two warnings per request


def make_protocol_class(guard: Guard) -> type[GuardedProtocol]:
    return type("GuardedProtocol", (GuardedProtocol,), {"guard": guard})


class Acceptor:
    """Accepts on one listening socket while the Guard has room, and hands each connection to the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        guard: Guard,
        protocol: Callable[[str], asyncio.Protocol],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.guard = guard
        self.protocol = protocol
        self.closed = False
        self.connecting: set[asyncio.Task[Any]] = set()
        loop.add_reader(sock.fileno(), self.accept_some)

    def accept_some(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                # Out of descriptors or memory anyway (something else holds more than RESERVED_FDS): stop
                # accepting for a moment instead of spinning on a listening socket that stays readable.
                self.guard.note("accept_failed_" + (errno.errorcode.get(exc.errno or 0) or "error").lower())
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(0.1, self.resume)
                return
            address = normal_address(peer[0])
            refused = self.guard.admit(address)
            if refused is not None:
                self.guard.note(refused)
                turn_away(conn)
                continue
            conn.setblocking(False)
            task = self.loop.create_task(self.connect(conn, address))
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)

    async def connect(self, conn: socket.socket, address: str) -> None:
        made: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            made.append(self.protocol(address))
            return made[0]

        try:
            await self.loop.connect_accepted_socket(factory, conn)
        except Exception:  # the peer went away before the transport was set up: its slot is free again
            conn.close()
            if made and isinstance(made[0], GuardedProtocol):
                made[0].give_back_slot()
            else:
                self.guard.release(address)

    def resume(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self.accept_some)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    async def wait_closed(self) -> None:
        return None


def ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def normal_address(address: str) -> str:
    """One key per client: an IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) counts as a.b.c.d."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


def turn_away(conn: socket.socket) -> None:
    """Answer 503 too_many_connections and close, without waiting for anything. What the client already sent is read
    first, so the close is a FIN after our answer, not a reset that could discard it."""
    try:
        conn.setblocking(False)
        try:
            conn.recv(65_536)
        except OSError:
            pass
        conn.send(NO_ROOM)
    except OSError:
        pass
    finally:
        conn.close()


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for host:port, as asyncio's create_server makes them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[Any, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class GuardedServer(uvicorn.Server):
    """uvicorn's Server, listening through Acceptors instead of the event loop's own server."""

    def __init__(self, config: uvicorn.Config, guard: Guard, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.guard = guard
        self.on_exit = on_exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config
        loop = asyncio.get_running_loop()
        protocol_class = config.http_protocol_class

        def protocol(address: str) -> asyncio.Protocol:
            made: asyncio.Protocol = protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
                address=address,
            )
            return made

        try:
            listeners = listening_sockets(config.host, config.port, config.backlog)
        except OSError as exc:
            uvicorn_logger.error(exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)
        self.servers = [Acceptor(loop, sock, self.guard, protocol) for sock in listeners]  # type: ignore[misc]
        self._log_started_message(listeners)
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        self.guard.report()  # the counts not logged yet

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.on_exit is not None:
            self.on_exit()
        super().handle_exit(sig, frame)


def build_server(
    app: Any,
    *,
    host: str,
    port: int,
    limits: Limits,
    proxy_headers: bool = True,
    forwarded_allow_ips: str | None = None,
    on_exit: Callable[[], None] | None = None,
) -> uvicorn.Server:
    """The server `tablebox serve`, `tablebox demo` and `tablebox relay serve` run (call `.run()`): the connection
    cap is worked out here, from the file limit as it is now."""
    nofile = file_limit()
    cap = connection_cap(limits, nofile)
    if limits.max_connections > cap:
        log.warning("http.max_connections_lowered", wanted=limits.max_connections, cap=cap, file_limit=nofile)
    guard = Guard(limits, cap)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=make_protocol_class(guard),
        ws="none",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]  # a float works: it goes to call_later
        server_header=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    log.info(
        "http.limits",
        max_connections=cap,
        file_limit=nofile,
        per_address=limits.max_connections_per_address or None,
        max_header_bytes=limits.max_header_bytes,
        header_timeout=limits.header_timeout,
        body_timeout=limits.body_timeout,
        idle_timeout=limits.idle_timeout,
    )
    return GuardedServer(config, guard, on_exit)
