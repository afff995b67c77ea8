"""The console at lunch rush: how long each key takes to show its result, while diners' orders keep arriving.

    .venv/bin/python bench/console_keys.py [--rounds 20] [--rate 4] [--board 60] [--warmup 10] [--sizes 120x40,80x24]

A fresh demo store in a temporary folder, served by a real `python -m appliance serve` (rate limits off). A feed
process posts diners' orders through that server at --rate a second (1-3 lines each, tables in turn) for the whole
run; the same process plays the kitchen: whenever more than --board orders are open it serves the oldest (each
step through the store's own `advance_order`, as another console would), so the board stays about as full as at
the rush of issue 18 (66 orders) however long the run. After --warmup seconds, for each size in turn a console
process starts (`tui.app.ConsoleApp` under Textual's pilot, headless), logs in with the demo manager's PIN and
plays --rounds rounds of: `a` on the highlighted order, down, up, `/` + a ticket number + Enter, a screen switch
(2 Tables or 3 Menu) and back (1 Orders).

What is timed: from the key press (the pilot handing the key to the app's driver, as a terminal's key would be)
to the first frame the console composes after the key's result is there (the screen's compositor output, which a
terminal would be sent; the pilot is headless, so nothing is written). A result is what a person waits for:

- `a`: the highlighted order's row shows its next status (or is gone: served), or a refusal is said;
- down / up: the highlight is on the row below / above, in view;
- `/`: the find dialog is open with its input focused; each digit: the digit is in the input; Enter: the dialog
  is gone and the board's highlight is on that ticket, in view;
- a screen switch: the new screen is on top with its rows (a first visit: the screen built and its rows read);
- the first screen after login: from the PIN's Enter to the Orders board showing its rows; and from the console
  process's start to the PIN screen (imports and app start).

Beside each key's figures, the console's CPU time from the key to that frame (every thread of its process: the
screen's and the database's; p50 and max): what the key cost the console itself, including whatever arrived
meanwhile. Where the wall time is much longer than that, the console waited for a core or for the database's lock.

Textual composes a frame at most 60 times a second (a change waits for the next update tick, up to ~17 ms): that
is part of what a person sees, so it is part of the figures. Prints figures (p50, p95, max per key, beside the
issue's targets: keys under 100 ms, first screen under 1 s), never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procs import PYTHON, Child, free_port, rss_mb, wait_first_answer

SCRIPT = str(Path(__file__).resolve())
KEY_TARGET_MS = 100.0
FIRST_SCREEN_TARGET_MS = 1000.0
RESULT_TIMEOUT_S = 5.0  # a key whose result is not on screen by then counts as missed

# What each timed key is, in the order printed.
KINDS = (
    ("a", "a: the order's next status shown"),
    ("down", "down: highlight on the row below"),
    ("up", "up: highlight on the row above"),
    ("slash", "/: find dialog open"),
    ("digit", "a digit typed in the dialog"),
    ("find_enter", "Enter: the ticket highlighted"),
    ("switch", "screen switch (rows shown)"),
    ("switch_first", "screen switch, first visit"),
)


# -- the feed: diners' orders through the web server, and the kitchen ---------------------------------------------


def feed(data_dir: Path, port: int, rate: float, board: int) -> None:
    """Post orders at `rate` a second until SIGTERM; serve the oldest open orders beyond `board`. Prints a JSON
    tally on its last line (the bench reads it from this process's log)."""
    import httpx

    from appliance.db.connection import open_connection, write_transaction
    from appliance.db.orders import advance_order, open_orders
    from appliance.settings import load_settings
    from appliance.store import table_urls
    from bench.run import candidate_lines

    stop = False

    def stopping(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    settings = load_settings(environ={}, data_dir=data_dir)
    tokens = [url.rsplit("/t/", 1)[1] for _, _, url in table_urls(settings)]
    rng = random.Random(18)
    tally: Counter[str] = Counter()
    conn = open_connection(settings.db_path)
    conn.set_busy_timeout(10_000)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        menu = client.get(f"/api/v1/tables/{tokens[0]}/menu?lang=zh").raise_for_status().json()
        pool = candidate_lines(menu)
        start = time.perf_counter()
        n = 0
        while not stop and pool:
            time.sleep(max(0.0, start + n / rate - time.perf_counter()))
            lines = [dict(line, quantity=rng.randint(1, 2)) for line in rng.sample(pool, k=min(len(pool), 3))]
            lines = lines[: rng.randint(1, len(lines))]
            answer = client.post(
                f"/api/v1/tables/{tokens[n % len(tokens)]}/orders",
                json={"client_key": uuid.uuid4().hex, "lines": lines},
            )
            n += 1
            if answer.status_code == 201:
                tally["placed"] += 1
            else:
                tally[f"answered {answer.status_code}"] += 1
                if answer.status_code == 422:  # sold out or not enough stock: order the other dishes
                    pool = [p for p in pool if p not in lines] or pool
            # The kitchen: the oldest orders beyond the board's size are served, a step at a time.
            orders = open_orders(conn, limit=board + 100)
            for order in orders[board:] if board else ():
                for _ in range(4):
                    try:
                        with write_transaction(conn):
                            moved = advance_order(conn, order.id)
                    except Exception:  # the console moved it meanwhile, or it is served: the next one
                        break
                    tally["kitchen steps"] += 1
                    if moved[1].status == "served":
                        tally["served by the kitchen"] += 1
                        break
    conn.close()
    tally["seconds"] = round(time.perf_counter() - start)
    print(json.dumps(dict(tally)), flush=True)


# -- one console under the pilot ----------------------------------------------------------------------------------


class Frames:
    """Records every frame the app composes (`App._display`, called with the compositor's update for the screen on
    top) and resolves a wait when a frame is composed with its predicate true."""

    def __init__(self, app: Any) -> None:
        self.count = 0
        self.waiting: list[tuple[Callable[[], bool], asyncio.Future[tuple[float, float]]]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            self.count += 1
            now = (time.perf_counter(), time.process_time())
            for predicate, done in list(self.waiting):
                if not done.done() and holds(predicate):
                    done.set_result(now)
                    self.waiting.remove((predicate, done))

        setattr(app, "_display", display)  # noqa: B010 (an instance attribute over the method)

    def expect(self, predicate: Callable[[], bool]) -> asyncio.Future[tuple[float, float]]:
        done: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.waiting.append((predicate, done))
        return done

    async def shown(self, done: asyncio.Future[tuple[float, float]], since: float) -> float | None:
        """Milliseconds from `since` (perf_counter) to the frame that showed it (None: not within RESULT_TIMEOUT_S)."""
        took = await self.shown_cpu(done, since, 0.0)
        return None if took is None else took[0]

    async def shown_cpu(
        self, done: asyncio.Future[tuple[float, float]], since: float, cpu_since: float
    ) -> tuple[float, float] | None:
        """Milliseconds from `since` to the frame that showed it, and the console's CPU time meanwhile (every thread:
        the screen's and the database's) from `cpu_since` (process_time)."""
        try:
            at, cpu = await asyncio.wait_for(asyncio.shield(done), RESULT_TIMEOUT_S)
        except TimeoutError:
            self.waiting = [w for w in self.waiting if w[1] is not done]
            return None
        return (at - since) * 1000, (cpu - cpu_since) * 1000


def holds(predicate: Callable[[], bool]) -> bool:
    try:
        return bool(predicate())
    except Exception:  # a widget not mounted yet, a screen going away: not yet
        return False


# What a key's result is, as a check on the console's state (made true by the same change that the next frame shows).


def order_moved(app: Any, screen: Any, order_id: int) -> Callable[[], bool]:
    """`a`: the order's row shows another status, or it left the board (served), or a refusal was said."""
    status = screen.orders[order_id].status
    said = app.last_message
    return lambda: (
        screen.orders.get(order_id) is None
        or screen.orders[order_id].status != status
        or (app.last_message != said and app.last_message.startswith("✗"))
    )


def highlight_on(screen: Any, row_key: Any) -> Callable[[], bool]:
    """The highlight is on that row, and the row is in view (the table scrolls to it a refresh after the move)."""
    return lambda: screen.selected_key() == row_key and in_view(screen)


def where(app: Any) -> str:
    """What the console shows now, in a line (for a key whose result never came)."""
    from textual.widgets import DataTable

    said = f"{app.current_mode}, {type(app.screen).__name__} on top, focus {type(app.focused).__name__}"
    tables = app.screen.query(DataTable)
    if tables:
        table = tables.first()
        said += (
            f"; highlight row {table.cursor_row} of {table.row_count} (key {app.screen.selected_key()}),"
            f" view from row {round(table.scroll_y)}, {table.scrollable_content_region.height - 1} rows high"
        )
    return f"{said}; message {app.last_message!r}"


def in_view(screen: Any) -> bool:
    """The highlighted row of the screen's table is within the rows it shows (less its header row)."""
    from textual.widgets import DataTable

    table = screen.query_one(DataTable)
    top = round(table.scroll_y)
    return bool(top <= table.cursor_row < top + table.scrollable_content_region.height - 1)


def dialog_open(app: Any, screen: Any) -> Callable[[], bool]:
    from textual.widgets import Input

    return lambda: app.screen is not screen and isinstance(app.focused, Input)


def typed_in(app: Any, text: str) -> Callable[[], bool]:
    from textual.widgets import Input

    return lambda: isinstance(app.focused, Input) and app.focused.value == text


def found(app: Any, screen: Any, order_id: int) -> Callable[[], bool]:
    return lambda: app.screen is screen and screen.selected_order() == order_id and in_view(screen)


def rows_shown(app: Any, mode: str) -> Callable[[], bool]:
    """The screen of `mode` is on top and its table (if it has one) has rows."""
    from textual.widgets import DataTable

    from tui.base import ConsoleScreen

    def check() -> bool:
        screen = app.screen
        if app.current_mode != mode or not isinstance(screen, ConsoleScreen):
            return False
        tables = screen.query(DataTable)
        return not tables or tables.first().row_count > 0

    return check


async def drive(data_dir: Path, size: tuple[int, int], rounds: int, gap: float, spawned_at: float) -> dict[str, Any]:
    """Start a console, log in, play the rounds; the figures as a dict."""
    started = time.time()
    from textual.coordinate import Coordinate
    from textual.widgets import DataTable, Input

    from appliance.db.connection import open_connection
    from appliance.db.orders import newest_order_id
    from appliance.demo import DEMO_STAFF
    from appliance.settings import load_settings
    from appliance.store import read_secret
    from tui.app import ConsoleApp

    imported = time.time()
    settings = load_settings(environ={}, data_dir=data_dir)
    pin = next(pin for _, role, pin in DEMO_STAFF if role == "manager")
    # As `tablebox console` makes it (quiet_gc: its own process, as here).
    app = ConsoleApp(
        settings.db_path, read_secret(settings.secret_path), public_base_url=settings.public_base_url, quiet_gc=True
    )
    frames = Frames(app)
    times: dict[str, list[float]] = {kind: [] for kind, _ in KINDS}
    cpu_times: dict[str, list[float]] = {kind: [] for kind, _ in KINDS}
    missed: Counter[str] = Counter()
    rng = random.Random(size[0])
    out: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "import_ms": (imported - started) * 1000}

    async def timed(pilot: Any, kind: str, key: str, predicate: Callable[[], bool], wanted: str = "") -> None:
        if not app.is_running:
            return
        if holds(predicate):
            missed[f"{kind} (already true before the key: not timed)"] += 1
            return
        done = frames.expect(predicate)
        pressed, cpu = time.perf_counter(), time.process_time()
        await pilot.press(key)
        took = await frames.shown_cpu(done, pressed, cpu)
        if not app.is_running:  # the console failed meanwhile: what it showed last is not the key's result
            return
        if took is None:
            missed[kind] += 1
            out.setdefault("missed_states", []).append(f"{kind} ({key}{wanted}): {where(app)}")
        else:
            times[kind].append(took[0])
            cpu_times[kind].append(took[1])
        await asyncio.sleep(gap)

    def board() -> Any:
        screen = app.screen
        return screen, screen.query_one(DataTable)

    db_times: dict[str, list[float]] = {}
    call = app.db.call

    async def timed_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The console's database calls, each timed (a staff action's transaction is `act`)."""
        began = time.perf_counter()
        try:
            return await call(fn, *args, **kwargs)
        finally:
            name = "act" if fn.__name__ == "run" else fn.__name__
            db_times.setdefault(name, []).append((time.perf_counter() - began) * 1000)

    app.db.call = timed_call
    collections: list[tuple[int, float]] = []  # (generation, ms) of each garbage collection meanwhile
    gc_began = [0.0]

    def collecting(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            collections.append((info["generation"], (time.perf_counter() - gc_began[0]) * 1000))

    gc.callbacks.append(collecting)

    async def play(pilot: Any) -> None:
        login_shown = frames.expect(lambda: isinstance(app.focused, Input) and app.current_mode == "login")
        app_start = await frames.shown(login_shown, up_to)
        out["app_start_ms"] = app_start
        if spawned_at and app_start is not None:
            out["pin_screen_ms"] = (up_to_wall - spawned_at) * 1000 + app_start
        for digit in pin:
            await pilot.press(digit)
        done = frames.expect(rows_shown(app, "orders"))
        pressed = time.perf_counter()
        await pilot.press("enter")
        out["login_ms"] = await frames.shown(done, pressed)
        await asyncio.sleep(1.0)  # the first alerts and reloads settle
        db_times.clear()
        collections.clear()
        out["objects"] = [len(gc.get_objects())]
        mark.update(first_order=newest_order_id(conn), cpu=time.process_time(), wall=time.perf_counter())
        out["board_rows"] = [board()[1].row_count]
        visited = {"orders"}
        for number in range(rounds):
            if not app.is_running:
                break
            screen, table = board()
            # a: the highlighted order's next step
            order_id = screen.selected_order()
            if order_id is not None and order_id in screen.orders:
                await timed(pilot, "a", "a", order_moved(app, screen, order_id))
            # down, then up
            for kind, step in (("down", 1), ("up", -1)):
                screen, table = board()
                to = table.cursor_row + step
                if 0 <= to < table.row_count:
                    key = table.coordinate_to_cell_key(Coordinate(to, 0)).row_key.value
                    await timed(pilot, kind, kind, highlight_on(screen, key), f", wanted on key {key}")
            # / + a ticket + Enter: an order in the newer half of the board, not the highlighted one
            screen, table = board()
            newer = sorted(screen.orders.values(), key=lambda o: -o.id)[: max(1, len(screen.orders) // 2)]
            candidates = [o for o in newer if o.id != screen.selected_order()]
            if candidates:
                target = rng.choice(candidates)
                await timed(pilot, "slash", "slash", dialog_open(app, screen))
                ticket = str(target.ticket_no)
                for typed in range(1, len(ticket) + 1):
                    await timed(pilot, "digit", ticket[typed - 1], typed_in(app, ticket[:typed]))
                await timed(pilot, "find_enter", "enter", found(app, screen, target.id), f", wanted on key {target.id}")
                if app.screen is not screen:  # the dialog stayed (a refusal): away with it
                    await pilot.press("escape")
                    await asyncio.sleep(gap)
                if board()[1].row_count < 3:  # the find narrowed the board: back to every open order
                    await pilot.press("escape")
                    await asyncio.sleep(gap)
            # a screen switch and back
            other = ("tables", "2") if number % 2 == 0 else ("menu", "3")
            for mode, key in (other, ("orders", "1")):
                kind = "switch" if mode in visited else "switch_first"
                visited.add(mode)
                await timed(pilot, kind, key, rows_shown(app, mode))
        out["board_rows"].append(board()[1].row_count)
        out["objects"].append(len(gc.get_objects()))

    conn = open_connection(settings.db_path)
    up_to, up_to_wall = time.perf_counter(), time.time()
    mark = {"first_order": newest_order_id(conn), "cpu": time.process_time(), "wall": time.perf_counter()}
    try:
        async with app.run_test(size=size) as pilot:
            await play(pilot)
            out["alerts"] = app.alerts
    except Exception as error:  # the console failed: say how, with the figures so far
        cause = getattr(error, "error", None) or error  # a worker's failure carries the error it raised
        out["failed"] = f"{type(cause).__name__}: {cause}"
    out["seconds"] = time.perf_counter() - mark["wall"]
    out["cpu_pct"] = 100 * (time.process_time() - mark["cpu"]) / out["seconds"]
    out["orders_arrived"] = newest_order_id(conn) - mark["first_order"]
    out["frames"] = frames.count
    out["rss_mb"] = rss_mb(os.getpid())
    out["db"] = db_times
    gc.callbacks.remove(collecting)
    out["gc"] = {
        str(generation): [ms for g, ms in collections if g == generation]
        for generation in sorted({g for g, _ in collections})
    }
    conn.close()
    out["times"], out["cpu"], out["missed"] = times, cpu_times, dict(missed)
    return out


def console(data_dir: Path, size: str, rounds: int, gap: float, spawned_at: float, out: Path) -> None:
    width, height = (int(n) for n in size.split("x"))
    figures = asyncio.run(drive(data_dir, (width, height), rounds, gap, spawned_at))
    out.write_text(json.dumps(figures))


# -- the bench: store, server, feed, one console per size, figures --------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def report(figures: dict[str, Any]) -> None:
    arrived, seconds, rows = figures["orders_arrived"], figures["seconds"], figures.get("board_rows") or ["?", "?"]
    print(
        f"\nconsole {figures['size']}: {sum(len(v) for v in figures['times'].values())} keys timed over {seconds:.0f} s"
        f" while {arrived} orders arrived ({arrived / seconds:.1f}/s); board {rows[0]} -> {rows[-1]} open orders;"
        f" the console used {figures['cpu_pct']:.0f}% of a core; {figures['frames']} frames;"
        f" {figures.get('alerts', '?')} alerts rung"
    )
    if figures.get("failed"):
        print(f"  THE CONSOLE FAILED: {figures['failed']} (its log: console-{figures['size']}.log; --keep keeps it)")
    print(
        f"  {'key (result on screen)':<38} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8}   target     met"
        f"   {'cpu p50':>8} {'cpu max':>8}"
    )
    for kind, words in KINDS:
        values, cpu = figures["times"][kind], figures["cpu"][kind]
        if values:
            print(
                f"  {words:<38} {len(values):>4} {spread(values)}   < {KEY_TARGET_MS:.0f} ms   {met(values):<4}"
                f" {statistics.median(cpu):>5.1f} ms {max(cpu):>5.1f} ms"
            )
    login, pin_screen = figures.get("login_ms"), figures.get("pin_screen_ms")
    print(
        "  first screen: PIN Enter -> Orders board with its rows: "
        + (f"{login:.0f} ms" if login is not None else "not shown")
        + f"   (target < {FIRST_SCREEN_TARGET_MS:.0f} ms: {'yes' if login and login < FIRST_SCREEN_TARGET_MS else 'NO'})"
    )
    if pin_screen is not None:
        print(
            f"  console process start -> PIN screen: {pin_screen:.0f} ms (importing Textual and the console"
            f" {figures['import_ms']:.0f} ms; the app's start to the PIN screen {figures['app_start_ms']:.0f} ms)"
        )
    for what, count in figures["missed"].items():
        print(f"  missed: {what}: {count} key(s) without their result on screen within {RESULT_TIMEOUT_S:.0f} s")
    for state in figures.get("missed_states", []):
        print(f"    after {state}")
    if figures.get("rss_mb"):
        rss, peak = figures["rss_mb"]
        print(f"  the console's memory at the end: {rss:.1f} MB resident (peak {peak:.1f} MB)")
    if len(figures.get("objects", [])) == 2:
        print(f"  objects the garbage collector tracks: {figures['objects'][0]:,} -> {figures['objects'][1]:,}")
    for generation, values in figures.get("gc", {}).items():
        print(
            f"  Python's garbage collections of generation {generation} meanwhile: {len(values)},"
            f" max {max(values):.1f} ms, {sum(values):.0f} ms in all"
        )
    busiest = sorted(figures["db"].items(), key=lambda kv: -sum(kv[1]))[:6]
    if busiest:
        print("  the console's database calls meanwhile (on its database thread; `act` = a staff action's write):")
        for name, values in busiest:
            print(f"    {name:<36} {len(values):>4} {spread(values)}")


def spread(values: list[float]) -> str:
    """p50, p95 and max, in ms."""
    p50, p95, top = statistics.median(values), percentile(values, 0.95), max(values)
    return f"{p50:>5.1f} ms {p95:>5.1f} ms {top:>5.1f} ms"


def met(values: list[float]) -> str:
    """yes: every key under the target; p95: 95 % of them; NO."""
    return "yes" if max(values) < KEY_TARGET_MS else ("p95" if percentile(values, 0.95) < KEY_TARGET_MS else "NO")


def bench(args: argparse.Namespace) -> int:
    from appliance.demo import ensure_demo_store
    from appliance.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="tablebox-console-keys-"))
    server = feeder = None
    try:
        data_dir = tmp / "store"
        data_dir.mkdir()
        ensure_demo_store(load_settings(environ={}, data_dir=data_dir))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TABLEBOX_")}
        env.update(
            {
                "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
                "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
                "TABLEBOX_LOG_FORMAT": "json",
            }
        )
        server = Child(
            "server",
            [
                PYTHON,
                "-m",
                "appliance",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            log_path=tmp / "server.log",
        )
        wait_first_answer(server, port, "/healthz")
        feed_args = ["--rate", str(args.rate), "--board", str(args.board)]
        feeder = Child(
            "feed",
            [PYTHON, SCRIPT, "--feed", str(port), "--data-dir", str(data_dir), *feed_args],
            env=env,
            log_path=tmp / "feed.log",
        )
        print(
            f"demo store served on 127.0.0.1:{port}; diners' orders at {args.rate:g}/s through it, the kitchen serving"
            f" the oldest beyond {args.board} open; {args.warmup:g} s warm-up; {os.cpu_count()} cores,"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        time.sleep(args.warmup)
        for size in args.sizes.split(","):
            out = tmp / f"console-{size}.json"
            console_args = ["--data-dir", str(data_dir), "--rounds", str(args.rounds), "--gap", str(args.gap)]
            done = subprocess.run(
                [
                    PYTHON,
                    SCRIPT,
                    "--console",
                    size,
                    *console_args,
                    "--out",
                    str(out),
                    "--spawned-at",
                    repr(time.time()),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            (tmp / f"console-{size}.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0 or not out.exists():
                print(f"console {size} failed ({done.returncode}):\n{done.stderr[-3000:]}")
                continue
            report(json.loads(out.read_text()))
            print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        feeder.stop()
        tally = (tmp / "feed.log").read_text(errors="replace").strip().splitlines()
        print(f"\nfeed: {tally[-1] if tally else 'no tally'}")
    finally:
        for child in (feeder, server):
            if child is not None:
                child.stop()
        if args.keep:
            print(f"store and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of keys per console size (default 20)")
    parser.add_argument("--rate", type=float, default=4.0, help="diners' orders a second (default 4)")
    parser.add_argument(
        "--board", type=int, default=60, help="the kitchen serves the oldest beyond this many open (0: never)"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of orders before the first console")
    parser.add_argument("--sizes", default="120x40,80x24", help="console sizes, comma-separated (default 120x40,80x24)")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between keys, after a key's result (0.2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and logs")
    # The bench's own child processes.
    parser.add_argument("--feed", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--console", metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.feed:
        feed(args.data_dir, args.feed, args.rate, args.board)
        return 0
    if args.console:
        console(args.data_dir, args.console, args.rounds, args.gap, args.spawned_at, args.out)
        return 0
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # stop the children (finally) on SIGTERM
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
