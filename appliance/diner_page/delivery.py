"""How the diner's page and its files travel to a phone, the same on the box and on the relay (no framework here:
bytes in, status, bytes and headers out).

- Encoding by the phone's `Accept-Encoding` with its q-values: brotli, else gzip, else the bytes as they are
  (identity). Every answer that could have been encoded says `Vary: Accept-Encoding`.
- Each distinct body is compressed once per encoding and kept (`CompressedBodies`, a bounded LRU keyed by the
  body's digest), never per request: a second phone at the same table, or the same phone again, costs a lookup.
- Validators: a strong ETag over the uncompressed body (so the same ETag names the gzip and the brotli copy: the
  bytes a phone decodes are the same), and 304 with no body when `If-None-Match` names it.
- The page's language: the diner's own choice (cookie `tb_lang`, set by the page's language switch), else `?lang=`,
  else the browser's `Accept-Language` in q order, else the store's first language.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import brotli

from appliance.diner_page import CSS, FILES, JS, SERVICE_WORKER, STATIC_DIR, slim

GZIP_LEVEL = 9
BROTLI_QUALITY = 11  # the smallest; a large body gets a quick copy first (CompressedBodies)
BROTLI_QUICK_QUALITY = 5
QUICK_FIRST_BYTES = 16 * 1024  # below this, quality 11 takes a few milliseconds: made at once
MAX_PENDING_UPGRADES = 64  # beyond this many waiting, a body keeps its quick copy
MIN_COMPRESS_BYTES = 256  # below this the encoding's own header is most of the saving
LANG_COOKIE = "tb_lang"
# Preferred in this order when the phone weighs them the same.
PREFERENCE = ("br", "gzip", "identity")
_Q = re.compile(r"[01](\.[0-9]{0,3})?")  # RFC 9110 12.4.2: a qvalue


def etag_of(body: bytes) -> str:
    """A strong validator over the uncompressed bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _weighted(header: str) -> list[tuple[str, float]]:
    """`a;q=0.5, b` -> [("a", 0.5), ("b", 1.0)], names lower-cased; a malformed q counts as 0 (not acceptable)."""
    out = []
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.replace(" ", "").lower().partition("=")
            if key == "q":
                q = min(float(value), 1.0) if _Q.fullmatch(value) else 0.0
        out.append((name.lower(), q))
    return out


def choose_encoding(accept_encoding: str | None) -> str:
    """ "br", "gzip" or "identity" for this `Accept-Encoding` (RFC 9110 12.5.3): the highest q above 0, brotli
    before gzip before identity at equal q; `*` stands for any coding not named; no header: identity. A phone that
    refuses everything (identity;q=0 and nothing else) still gets identity: better than no page."""
    if not accept_encoding:
        return "identity"
    given = dict(_weighted(accept_encoding))
    star = given.get("*")

    def q(coding: str) -> float:
        if coding in given:
            return given[coding]
        if coding == "identity":  # acceptable unless refused, by name or by "*;q=0"; then the last choice
            return 0.0 if star == 0.0 else 0.001
        return star if star is not None else 0.0

    best = max(PREFERENCE, key=lambda c: (q(c), -PREFERENCE.index(c)))
    return best if q(best) > 0 else "identity"


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names this ETag (weak comparison, as RFC 9110 13.1.2 asks; `*` matches any)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


class _Asked(Protocol):
    """What a request carries that picks the page's language (litestar's Request has these)."""

    @property
    def cookies(self) -> Mapping[str, str]: ...

    @property
    def query_params(self) -> Mapping[str, Any]: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def request_page_lang(request: _Asked, offered: Sequence[str]) -> str:
    """`choose_lang` for a request: cookie tb_lang, ?lang=, Accept-Language, else the first offered."""
    return choose_lang(
        offered,
        request.cookies.get(LANG_COOKIE),
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
    )


def choose_lang(offered: Sequence[str], cookie: str | None, query: str | None, accept_language: str | None) -> str:
    """The language to put the page's data in: the first of the cookie, ?lang= and the Accept-Language tags (by q)
    that the store offers, else the store's first language. Tags are matched on their language: zh-CN, zh-TW and
    zh-Hant are zh, en-GB is en."""

    def base(tag: str) -> str:
        tag = tag.strip().lower()
        return "zh" if tag.startswith("zh") else tag.split("-")[0][:8]

    candidates: list[str] = [c for c in (cookie, query) if c]
    if accept_language:
        weighted = [(tag, q) for tag, q in _weighted(accept_language) if q > 0 and tag != "*"]
        candidates += [tag for tag, _ in sorted(weighted, key=lambda tq: -tq[1])]  # sorted() keeps ties in order
    for tag in candidates:
        if base(tag) in offered:
            return base(tag)
    return offered[0] if offered else "zh"


class CompressedBodies:
    """Each distinct body's encoded copies, made on first use and kept: a bounded LRU by digest (at most
    `max_bodies` bodies and `max_bytes` of encoded copies), so memory stays flat however many tables, languages
    and menu versions pass through. Thread-safe.

    Brotli's best quality (11) saves a tenth over a quick one (5) but takes some 30 times as long (about 0.1 s
    for a 100 KB page here, several times that on a Raspberry Pi), and a page is new whenever its table's visit or
    the menu changes. So a large body's first brotli copy is the quick one, sent at once; when the body is asked for
    again (a second phone at the table, a reload) the best copy is made on a background thread (one for every
    cache, one job at a time) and replaces it for every later phone. A body asked for once costs one quick
    compression, a popular one two compressions in all. gzip has no such trade (level 9 costs milliseconds).
    `compressions` counts the work done; `settle()` waits for the upgrades queued so far."""

    def __init__(self, max_bodies: int = 128, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bodies = max_bodies
        self.max_bytes = max_bytes
        self._copies: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._quick: set[str] = set()  # bodies whose brotli copy is the quick one
        self._pending: set[str] = set()  # ... and of those, the ones whose best copy is being made
        self.compressions = 0

    def __len__(self) -> int:
        return len(self._copies)

    def cached(self, etag: str, encoding: str) -> bytes | None:
        with self._lock:
            copies = self._copies.get(etag)
            return None if copies is None else copies.get(encoding)

    def encoded(self, etag: str, body: bytes, encoding: str) -> bytes:
        """`body` (whose ETag is `etag`) in `encoding` ("br" or "gzip"; anything else: the body itself)."""
        if encoding not in ("br", "gzip"):
            return body
        with self._lock:
            copies = self._copies.get(etag)
            if copies is not None:
                self._copies.move_to_end(etag)
                if encoding in copies:
                    if encoding == "br" and etag in self._quick:
                        self._want_best(etag, body)
                    return copies[encoding]
            # made under the lock: two phones asking for the same new body at once cost one compression
            quick = encoding == "br" and len(body) > QUICK_FIRST_BYTES
            data = compress(body, encoding, BROTLI_QUICK_QUALITY if quick else None)
            self.compressions += 1
            self._put(etag, encoding, data)
            if quick:
                self._quick.add(etag)
            return data

    def _put(self, etag: str, encoding: str, data: bytes) -> None:
        copies = self._copies.setdefault(etag, {})
        self._bytes += len(data) - len(copies.get(encoding, b""))
        copies[encoding] = data
        self._copies.move_to_end(etag)
        while len(self._copies) > 1 and (len(self._copies) > self.max_bodies or self._bytes > self.max_bytes):
            gone, dropped = self._copies.popitem(last=False)  # the one just made stays, however large
            self._bytes -= sum(len(v) for v in dropped.values())
            self._quick.discard(gone)

    def _want_best(self, etag: str, body: bytes) -> None:
        """Queue the best brotli copy of a body asked for again (once; not beyond MAX_PENDING_UPGRADES waiting)."""
        if etag not in self._pending and len(self._pending) < MAX_PENDING_UPGRADES:
            self._pending.add(etag)
            _upgrades.put(lambda: self._upgrade(etag, body))

    def _upgrade(self, etag: str, body: bytes) -> None:
        try:
            best = compress(body, "br")
            with self._lock:
                self.compressions += 1
                copies = self._copies.get(etag)
                if copies is not None and "br" in copies:
                    self._bytes += len(best) - len(copies["br"])
                    copies["br"] = best  # not moved in the LRU: only phones asking for it make it recent
                self._quick.discard(etag)
        finally:
            with self._lock:
                self._pending.discard(etag)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until this cache's background upgrades are done (tests and the bench read the final bytes)."""
        done = threading.Event()
        _upgrades.put(done.set)  # one worker, first in first out: everything queued before it is done then
        done.wait(timeout)


def compress(body: bytes, encoding: str, quality: int | None = None) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY if quality is None else quality))
    return gzip.compress(body, GZIP_LEVEL, mtime=0)  # mtime 0: the same body, the same bytes


class _Upgrades:
    """One daemon thread for every cache's brotli upgrades, started on first use: at most one core goes to them,
    they run in order, and a stopping server does not wait for them (nothing is lost: a copy not upgraded yet is
    the quick one, and the next process starts afresh)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def put(self, job: Callable[[], None]) -> None:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tb-brotli", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # one body failing to compress better keeps its quick copy; the next job goes on
                continue


_upgrades = _Upgrades()


PAGES = CompressedBodies()  # the diner pages (one per table, language and state of its data)
ASSETS = CompressedBodies(max_bodies=32)  # the fixed files: sw.js and the page's parts under /static/
MENUS = CompressedBodies(max_bodies=64)  # the menu API's answers (one per menu version, language and hours)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def asset(name: str) -> Asset | None:
    """A file served beside the page (read once per process): the service worker, and the page's parts (the page
    carries them itself; /static/ keeps them for a page saved before they were joined). None for anything else."""
    if name == "diner.html" or name not in (*FILES, SERVICE_WORKER):
        return None
    path = STATIC_DIR / name
    if not path.is_file():
        return None  # sw.js before the offline part is installed
    js = name.endswith(".js")
    body = slim(path.read_text(encoding="utf-8"), js).encode()  # as the page's own parts are
    return Asset(body, JS if js else CSS, etag_of(body))


@dataclass(frozen=True)
class Answer:
    """What to send: status, body (already encoded) and headers (the caller adds Content-Type)."""

    status: int
    body: bytes
    headers: dict[str, str]


def deliver(
    body: bytes,
    request_headers: Mapping[str, str],
    *,
    cache: CompressedBodies,
    cache_control: str = "no-cache",
    vary: Iterable[str] = (),
    etag: str | None = None,
) -> Answer:
    """The answer to a GET for `body`: 304 when the phone's copy is current, else 200 in the best encoding it
    accepts. `request_headers` is looked up by lower-case name (litestar's and httpx's headers both are)."""
    tag = etag or etag_of(body)
    headers = {"ETag": tag, "Cache-Control": cache_control, "Vary": ", ".join(("Accept-Encoding", *vary))}
    if not_modified(request_headers.get("if-none-match"), tag):
        return Answer(304, b"", headers)
    encoding = choose_encoding(request_headers.get("accept-encoding"))
    if encoding != "identity" and len(body) >= MIN_COMPRESS_BYTES:
        data = cache.encoded(tag, body, encoding)
        if len(data) < len(body):
            return Answer(200, data, {**headers, "Content-Encoding": encoding})
    return Answer(200, body, headers)
