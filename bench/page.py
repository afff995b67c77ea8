"""The diner's page on a weak phone: issue 16's six figures beside their targets, in one run. Prints, never asserts.

    .venv/bin/python bench/page.py [--runs 3] [--cpu 4] [--lang zh] [--photos] [--verbose]

A fresh demo store (appliance.demo: 64 dishes; with --photos, the pictures `tablebox demo --photos` draws) served by `python -m appliance serve`; the page opened in Debian's
headless Chromium at 390x844 (touch, mobile), a new browser context per cold visit. Throttling is Chromium's own,
set over CDP on every target that fetches (the page and any service worker it starts):
`Network.emulateNetworkConditions` and `Emulation.setCPUThrottlingRate` (4x: roughly an old Android phone).

Profiles (Chrome DevTools' presets as Puppeteer's `PredefinedNetworkConditions` spells them):
  slow 3G: latency 2,000 ms, download 50,000 B/s, upload 50,000 B/s
  fast 3G: latency 562.5 ms, download 180,000 B/s, upload 84,375 B/s

Figures:
  bytes over the wire, first view: the sum of `encodedDataLength` from `Network.loadingFinished` (headers and body
    as they came over the wire, compressed if the server compressed) of every request of a cold visit until the
    network is quiet (3 s with no request open); the diner's event stream stays open and is counted by its
    `Network.dataReceived` bytes; a service worker's requests are counted; its script's download (made as the worker
    starts: CDP sees a part of it at most, unthrottled) is weighed apart and printed under the table.
  requests before the menu shows: the requests sent before the page's `tb-menu-rendered` mark over the network
    (not those a service worker or the disk cache answered), and the longest chain among them of requests each
    sent after the one before it had finished ("in series").
  menu on screen: the `tb-menu-painted` mark's time after navigation start (the first frame painted after the
  menu was built, `tb-menu-rendered`), cold, slow 3G and fast 3G, CPU 4x.
  second visit: a new page in the same browser context after the cold slow-3G visit (warm HTTP cache, the service
    worker installed if the page has one), slow 3G, CPU 4x.
  layout shift: the sum of `layout-shift` entries (PerformanceObserver) of the cold slow-3G visit, until quiet.
Timing figures are medians over `--runs` runs (range in brackets).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.db.connection import open_connection
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import list_tables, table_token
from appliance.demo import demo_data, ensure_demo_store
from appliance.settings import BoxSettings
from appliance.store import read_secret
from bench.procs import PYTHON, Child, free_port, wait_first_answer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCALES = {"zh": "zh-CN", "en": "en-US"}
QUIET_SECONDS = 3.0  # the network counts as quiet after this long with no request open (the event stream aside)
SETTLE_CAP_SECONDS = 40.0


@dataclass(frozen=True)
class Network:
    name: str
    latency_ms: float
    download: float  # bytes per second
    upload: float

    def cdp(self) -> dict[str, Any]:
        return {
            "offline": False,
            "latency": self.latency_ms,
            "downloadThroughput": self.download,
            "uploadThroughput": self.upload,
        }


SLOW_3G = Network("slow 3G", 400 * 5, 500 * 1000 / 8 * 0.8, 500 * 1000 / 8 * 0.8)
FAST_3G = Network("fast 3G", 150 * 3.75, 1.6 * 1000 * 1000 / 8 * 0.9, 750 * 1000 / 8 * 0.9)

# Layout shifts as they happen, with the elements that moved (so a reader can tell what to reserve room for).
SHIFT_OBSERVER = """
window.__tbShifts = [];
try {
  const name = (n) => !n || !n.nodeName ? "?" : n.nodeName.toLowerCase() + (n.id ? "#" + n.id : "")
    + (n.classList && n.classList.length ? "." + Array.from(n.classList).join(".") : "");
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput)
      window.__tbShifts.push({value: e.value, t: e.startTime, sources: (e.sources || []).map((s) => name(s.node))});
  }).observe({type: "layout-shift", buffered: true});
} catch (e) {}
"""


# Scrolls the whole menu one step per animation frame and returns the frame times (ms). The scroller is whichever
# element scrolls furthest (the document, or a menu column with its own scrolling).
SCROLL = """() => new Promise((done) => {
  const candidates = [document.scrollingElement, ...document.querySelectorAll("body *")].filter((e) => e &&
    e.scrollHeight - e.clientHeight > 50 && (e === document.scrollingElement || /auto|scroll/.test(getComputedStyle(e).overflowY)));
  const box = candidates.sort((a, b) => (b.scrollHeight - b.clientHeight) - (a.scrollHeight - a.clientHeight))[0];
  if (!box) return done([]);
  const times = []; let last = performance.now();
  const step = () => {
    const now = performance.now(); times.push(now - last); last = now;
    box.scrollTop += 120;
    if (box.scrollTop + box.clientHeight >= box.scrollHeight - 2 || times.length > 2000) done(times.slice(1));
    else requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
})"""


@dataclass
class Request:
    url: str
    kind: str
    start: float  # CDP monotonic seconds
    end: float | None = None
    encoded: int = 0  # bytes over the wire (loadingFinished), or received so far (dataReceived) if still open
    status: int | None = None
    from_cache: bool = False
    from_sw: bool = False
    failed: str | None = None
    target: str = "page"


@dataclass
class Visit:
    """One page load as CDP saw it."""

    rendered_ms: float  # tb-menu-rendered, after navigation start
    requests: list[Request] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    menu_at: float = 0.0  # the mark on CDP's monotonic clock
    worker_script: str | None = None  # the service worker's script URL, if the page installed one
    frames: list[float] = field(default_factory=list)  # frame times scrolling the whole menu (--scroll)

    @property
    def layout_shift(self) -> float:
        return float(sum(s["value"] for s in self.shifts))

    def before_menu(self, network_only: bool = True) -> list[Request]:
        """Requests sent before the menu was drawn (the event stream aside: it never ends and the menu never waits
        for it); network_only leaves out those answered by the service worker or the disk cache (a worker's own
        fetches are requests of their own here)."""
        return [
            r
            for r in self.requests
            if r.start < self.menu_at
            and r.kind != "EventSource"
            and not r.failed
            and not (network_only and (r.from_sw or r.from_cache))
        ]

    def in_series(self) -> int:
        """The longest chain of requests before the menu, each sent after the previous one had finished."""
        sent = sorted(self.before_menu(), key=lambda r: r.start)
        depth: list[int] = []
        for i, r in enumerate(sent):
            after = [depth[j] for j in range(i) if (sent[j].end or float("inf")) <= r.start]
            depth.append(1 + max(after, default=0))
        return max(depth, default=0)


class Recorder:
    """Network events of one CDP session (the page's, or a service worker's) into Requests."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: dict[str, Request] = {}
        self.clock: tuple[float, float] | None = None  # (monotonic, wall) seconds, from the first request

    def attach(self, session: Any) -> None:
        session.on("Network.requestWillBeSent", self._sent)
        session.on("Network.responseReceived", self._response)
        session.on("Network.dataReceived", self._data)
        session.on("Network.loadingFinished", self._finished)
        session.on("Network.loadingFailed", self._failed)

    def _sent(self, e: dict[str, Any]) -> None:
        url = e["request"]["url"]
        if url.startswith("data:"):
            return
        if self.clock is None:
            self.clock = (e["timestamp"], e["wallTime"])
        old = self.requests.get(e["requestId"])
        if old is not None and e.get("redirectResponse"):  # a redirect reuses the id: keep the first hop's bytes
            self.requests[e["requestId"] + "/" + str(old.start)] = old
        self.requests[e["requestId"]] = Request(url, e.get("type", "Other"), e["timestamp"], target=self.target)

    def _response(self, e: dict[str, Any]) -> None:
        r = self.requests.get(e["requestId"])
        if r is not None:
            resp = e["response"]
            r.status = resp.get("status")
            r.from_cache = bool(resp.get("fromDiskCache") or resp.get("fromPrefetchCache"))
            r.from_sw = bool(resp.get("fromServiceWorker"))

    def _data(self, e: dict[str, Any]) -> None:
        r = self.requests.get(e["requestId"])
        if r is not None and r.end is None:
            r.encoded += e.get("encodedDataLength", 0)

    def _finished(self, e: dict[str, Any]) -> None:
        r = self.requests.get(e["requestId"])  # None for a worker's script (its end only, and not all of it)
        if r is not None:
            r.end = e["timestamp"]
            r.encoded = int(e.get("encodedDataLength", 0))

    def _failed(self, e: dict[str, Any]) -> None:
        r = self.requests.get(e["requestId"])
        if r is not None:
            r.end = e["timestamp"]
            r.failed = e.get("errorText") or "failed"

    def open_count(self) -> int:
        return sum(1 for r in self.requests.values() if r.end is None and r.kind != "EventSource")


class Phone:
    """A browser context at a phone's size whose page and service workers are all throttled alike."""

    def __init__(self, browser: Any, locale: str, network: Network, cpu: float) -> None:
        self.network, self.cpu = network, cpu
        self.context = browser.new_context(
            viewport={"width": 390, "height": 844}, locale=locale, is_mobile=True, has_touch=True
        )
        self.context.add_init_script(SHIFT_OBSERVER)
        self.recorders: list[Recorder] = []
        self.workers = Workers(browser, network, self.recorders)

    def visit(self, url: str, scroll: bool = False) -> Visit:
        page = self.context.new_page()
        cdp = self.context.new_cdp_session(page)
        rec = Recorder("page")
        rec.attach(cdp)
        self.recorders.append(rec)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", self.network.cdp())
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": self.cpu})
        self.workers.apply()
        self.workers.watch(cdp)
        page.goto(url, wait_until="commit", timeout=120_000)
        page.wait_for_function(
            "performance.getEntriesByName('tb-menu-painted').length > 0", timeout=120_000, polling=50
        )
        # on screen = the first frame painted after the menu was built (tb-menu-painted); the requests before the
        # menu are those sent before it was built (tb-menu-rendered)
        rendered, mark_wall = page.evaluate(
            "(() => { const m = performance.getEntriesByName('tb-menu-rendered')[0];"
            " const p = performance.getEntriesByName('tb-menu-painted')[0];"
            " return [p.startTime, performance.timeOrigin + m.startTime]; })()"
        )
        deadline = time.monotonic() + SETTLE_CAP_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:  # (new workers attach through the page's session alone: see Workers)
            page.wait_for_timeout(200)
            if any(r.open_count() for r in self.recorders):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                break
        shifts = page.evaluate("window.__tbShifts || []")
        frames = page.evaluate(SCROLL) if scroll else []
        worker_script = page.evaluate(
            "(async () => { if (!navigator.serviceWorker) return null;"
            " const r = await navigator.serviceWorker.getRegistration();"
            " const w = r && (r.active || r.waiting || r.installing); return w ? w.scriptURL : null; })()"
        )
        requests = [r for rec in self.recorders for r in rec.requests.values()]
        clock = rec.clock or (0.0, 0.0)
        menu_at = clock[0] + (mark_wall / 1000 - clock[1])
        for r in self.recorders:
            r.requests.clear()
        cdp.detach()
        page.close()
        self.workers.page_closed()
        return Visit(rendered, requests, shifts, menu_at, worker_script, frames)

    def close(self) -> None:
        self.workers.close()
        self.context.close()


class Workers:
    """Service workers fetch on their own targets, which a page's throttling does not reach: each one is attached
    (non-flat CDP sessions, messages through `Target.sendMessageToTarget`), throttled alike, and its requests
    recorded. A worker the page starts is auto-attached paused (`waitForDebuggerOnStart`) and let run once
    throttled, so even its first fetches are slowed and counted; a worker already running (a second visit's) is
    attached from a browser-level session before the page navigates."""

    def __init__(self, browser: Any, network: Network, recorders: list[Recorder]) -> None:
        self.network = network
        self.recorders = recorders
        self.browser_session = browser.new_browser_cdp_session()
        self.browser_session.on("Target.receivedMessageFromTarget", self._message)
        self.by_session: dict[str, Recorder] = {}
        self.from_browser: set[str] = set()  # target ids attached through the browser session (live as long)
        self.from_page: set[str] = set()  # through the current page's session (gone with the page)
        self.next_id = 1000

    def watch(self, page_session: Any) -> None:
        page_session.on("Target.attachedToTarget", lambda e: self._attached(page_session, e))
        page_session.on("Target.receivedMessageFromTarget", self._message)
        page_session.send(
            "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": False}
        )

    def _attached(self, session: Any, e: dict[str, Any]) -> None:
        info, sid = e["targetInfo"], e["sessionId"]
        if info["type"] == "service_worker" and info["targetId"] not in self.from_browser | self.from_page:
            self.from_page.add(info["targetId"])
            self._throttle(session, sid)
        if e.get("waitingForDebugger"):
            self._send(session, sid, "Runtime.runIfWaitingForDebugger", {})

    def apply(self) -> None:
        """Attach the service workers already running and not attached yet: only before a visit navigates. During a
        visit a new worker is left to the page's auto-attach, which holds it until it is throttled (with both ways
        at once, one run's new worker made its first fetch unthrottled)."""
        for info in self.browser_session.send("Target.getTargets")["targetInfos"]:
            target = info["targetId"]
            if info["type"] != "service_worker" or target in self.from_browser | self.from_page:
                continue
            try:
                sid = self.browser_session.send("Target.attachToTarget", {"targetId": target, "flatten": False})
            except Exception:  # gone meanwhile
                continue
            self.from_browser.add(target)
            self._throttle(self.browser_session, sid["sessionId"])

    def page_closed(self) -> None:
        self.from_page.clear()

    def _throttle(self, session: Any, sid: str) -> None:
        rec = Recorder("service worker")
        self.by_session[sid] = rec
        self.recorders.append(rec)
        self._send(session, sid, "Network.enable", {})
        self._send(session, sid, "Network.emulateNetworkConditions", self.network.cdp())

    def _send(self, session: Any, sid: str, method: str, params: dict[str, Any]) -> None:
        self.next_id += 1
        message = json.dumps({"id": self.next_id, "method": method, "params": params})
        try:
            session.send("Target.sendMessageToTarget", {"sessionId": sid, "message": message})
        except Exception:  # the worker went away meanwhile
            pass

    def _message(self, e: dict[str, Any]) -> None:
        rec = self.by_session.get(e["sessionId"])
        if rec is None:
            return
        msg = json.loads(e["message"])
        handler = {
            "Network.requestWillBeSent": rec._sent,
            "Network.responseReceived": rec._response,
            "Network.dataReceived": rec._data,
            "Network.loadingFinished": rec._finished,
            "Network.loadingFailed": rec._failed,
        }.get(msg.get("method", ""))
        if handler is not None:
            handler(msg["params"])

    def close(self) -> None:
        try:
            self.browser_session.detach()
        except Exception:  # the browser may be closing
            pass


def start_server(tmp: Path, photos: bool = False) -> tuple[Child, str]:
    settings = BoxSettings(data_dir=tmp / "store")
    ensure_demo_store(settings)
    if photos:  # what `tablebox demo --photos` does: the project's drawn pictures instead of the placeholder
        from appliance.demo.photos import draw_demo_photos

        drawn = draw_demo_photos(tmp / "photos")
        command = [
            PYTHON,
            "-m",
            "appliance",
            "photo",
            "import",
            str(tmp / "photos"),
            "--data-dir",
            str(settings.data_dir),
        ]
        done = subprocess.run([*command, "--skip-refused"], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"tablebox photo import failed: {done.stdout}{done.stderr}")
        print(f"demo photos: {len(drawn)} drawn and imported (tablebox photo import)")
    conn = open_connection(settings.db_path)
    try:
        store_id = load_store_settings(conn).store_id
        table = next(t for t in list_tables(conn) if t.name == "A1")
        token = table_token(read_secret(settings.secret_path), store_id, table)
        dishes = sum(len(c["items"]) for c in demo_data()["categories"])
    finally:
        conn.close()
    port = free_port()
    env = {**os.environ, "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0", "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0"}
    argv = [PYTHON, "-m", "appliance", "serve", "--data-dir", str(settings.data_dir)]
    server = Child(
        "server",
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log_path=tmp / "server.log",
    )
    wait_first_answer(server, port, "/healthz")
    print(f"demo store: {dishes} dishes; page http://127.0.0.1:{port}/t/{token[:8]}...")
    return server, f"http://127.0.0.1:{port}/t/{token}"


def median(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0] / 1000:.2f} s"
    return f"{statistics.median(values) / 1000:.2f} s [{min(values) / 1000:.2f}-{max(values) / 1000:.2f}]"


def describe(visit: Visit, title: str) -> None:
    print(f"  {title}: menu at {visit.rendered_ms:.0f} ms; requests:")
    zero = min((r.start for r in visit.requests), default=0.0)
    for r in sorted(visit.requests, key=lambda r: r.start):
        end = f"{(r.end - zero) * 1000:7.0f}" if r.end is not None else "   open"
        flags = " ".join(
            f
            for f, on in (
                ("disk cache", r.from_cache),
                ("from SW", r.from_sw),
                (r.failed or "", bool(r.failed)),
                (r.target, r.target != "page"),
            )
            if on
        )
        before = "*" if r in visit.before_menu(network_only=False) else " "
        print(
            f"   {before} {(r.start - zero) * 1000:7.0f} -> {end} ms {r.encoded:7d} B {r.status or '-'} "
            f"{r.kind:<11} {r.url.split('/', 3)[-1][:60]} {flags}"
        )
    worst = sorted(visit.shifts, key=lambda s: -s["value"])[:5]
    for s in worst:
        print(f"     layout shift {s['value']:.4f} at {s['t']:.0f} ms: {', '.join(s['sources']) or '?'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each timing (medians are printed)")
    parser.add_argument("--cpu", type=float, default=4.0, help="Chromium's CPU throttling rate (1 = none)")
    parser.add_argument("--lang", choices=sorted(LOCALES), default="zh", help="the phone's language")
    parser.add_argument("--photos", action="store_true", help="the demo with its drawn photos (tablebox demo --photos)")
    parser.add_argument("--verbose", action="store_true", help="every request of the first runs, and the shifts")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="tablebox-page-bench-"))
    server = None
    try:
        server, url = start_server(tmp, args.photos)
        slow: list[Visit] = []
        warm: list[Visit] = []
        fast: list[Visit] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            version = browser.version
            try:
                for _ in range(args.runs):
                    phone = Phone(browser, LOCALES[args.lang], SLOW_3G, args.cpu)
                    try:
                        slow.append(phone.visit(url))
                        warm.append(phone.visit(url))
                    finally:
                        phone.close()
                    phone = Phone(browser, LOCALES[args.lang], FAST_3G, args.cpu)
                    try:
                        fast.append(phone.visit(url, scroll=not fast))
                    finally:
                        phone.close()
            finally:
                browser.close()
        if args.verbose:
            describe(slow[0], "cold, slow 3G")
            describe(warm[0], "second visit, slow 3G")
            describe(fast[0], "cold, fast 3G")
        first = slow[0]
        # The worker's script is weighed apart (CDP sees a part of its download at most, unthrottled).
        counted = [r for r in first.requests if r.url != first.worker_script]
        worker = ""
        if first.worker_script:  # its first download happens before CDP can watch the worker: weighed here
            answer = httpx.get(first.worker_script, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
            worker = f" + {first.worker_script.rsplit('/', 1)[-1]} {answer.num_bytes_downloaded / 1000:.1f} KB"
            worker_note = (
                f"  {first.worker_script.rsplit('/', 1)[-1]}: the service worker's script, "
                f"{answer.num_bytes_downloaded / 1000:.1f} KB of body ({answer.headers.get('content-encoding', 'identity')}),"
                " downloaded once at install after the menu shows; weighed apart (CDP sees a part of it at most)"
            )
        before = first.before_menu()
        kinds: dict[str, int] = {}
        for r in counted:
            kinds[r.kind] = kinds.get(r.kind, 0) + r.encoded
        cpu = f"{args.cpu:g}x CPU"
        load = os.getloadavg()[0]
        print(
            f"Chromium {version}, 390x844, {args.lang}; {args.runs} run(s) each; "
            f"load average {load:.1f} on {os.cpu_count()} cores"
        )
        rows = [
            (
                "bytes over the wire, first view",
                f"{sum(r.encoded for r in counted) / 1000:.1f} KB in {len(counted)} requests{worker}",
                "<= 25 KB",
            ),
            ("requests before the menu shows", f"{len(before)} ({first.in_series()} in series)", "1"),
            (f"menu on screen, slow 3G + {cpu}", median([v.rendered_ms for v in slow]), "<= 4.5 s"),
            (f"menu on screen, fast 3G + {cpu}", median([v.rendered_ms for v in fast]), "<= 1.2 s"),
            (f"menu on screen, second visit, slow 3G + {cpu}", median([v.rendered_ms for v in warm]), "<= 2.5 s"),
            ("layout shift, slow load", f"{max(v.layout_shift for v in slow):.3f}", "0"),
        ]
        width = max(len(r[0]) for r in rows)
        cell = max(len(r[1]) for r in rows)
        print(f"{'figure':<{width}}  {'measured':<{cell}}  target")
        for name, value, target in rows:
            print(f"{name:<{width}}  {value:<{cell}}  {target}")
        print(
            "  bytes by kind: "
            + ", ".join(f"{k} {v / 1000:.1f} KB" for k, v in sorted(kinds.items(), key=lambda x: -x[1]))
        )
        print("  before the menu: " + ", ".join(r.url.split("/", 3)[-1].split("?")[0][:40] for r in before))
        print(
            "  second visit: "
            + ", ".join(
                f"{r.url.split('/', 3)[-1].split('?')[0][:30]} "
                + ("SW" if r.from_sw else "cache" if r.from_cache else f"{r.status} {r.encoded} B")
                for r in warm[0].before_menu(network_only=False)
            )
        )
        if worker:
            print(worker_note)
        frames = sorted(fast[0].frames)
        if frames:

            def pct(q: float) -> float:
                return frames[min(len(frames) - 1, int(q * len(frames)))]

            print(
                f"  scrolling the whole menu (fast 3G page, {cpu}): {len(frames)} frames, p50 {pct(0.5):.1f} ms, "
                f"p95 {pct(0.95):.1f} ms, max {frames[-1]:.1f} ms, over 50 ms: {sum(f > 50 for f in frames)}"
            )
        print(f"  layout shift per slow run: {', '.join(f'{v.layout_shift:.3f}' for v in slow)} (the largest above)")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
