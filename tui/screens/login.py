"""The PIN screen: who is at the console decides what they may do. Five wrong PINs in a row lock the
screen for 30 seconds."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from appliance.db.staff import login, staff_count
from appliance.domain.errors import DomainError
from tui.widgets.header import ConsoleHeader

MAX_TRIES = 5
LOCKOUT_SECONDS = 30.0


class LoginScreen(Screen[None]):
    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen Vertical { width: 44; height: auto; border: thick $accent; padding: 1 2; }
    LoginScreen #pin-error { color: $error; height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.locked_until = 0.0

    def compose(self) -> ComposeResult:
        yield ConsoleHeader(icon="▤")
        with Center():
            with Vertical():
                yield Static("PIN 请输入员工密码", id="pin-title")
                yield Input(password=True, max_length=8, restrict=r"[0-9]*", id="pin")
                yield Static("", id="pin-error")

    async def on_screen_resume(self) -> None:
        self.app.sub_title = "locked 已锁定"
        pin = self.query_one("#pin", Input)
        pin.value = ""
        pin.focus()
        console = self.app
        if await console.db.call(staff_count) == 0:  # type: ignore[attr-defined]
            self.query_one("#pin-error", Static).update(
                "No staff yet. On the box run:\n  tablebox staff add NAME --role manager"
            )

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        error = self.query_one("#pin-error", Static)
        event.input.value = ""
        if time.monotonic() < self.locked_until:
            error.update(f"too many wrong PINs: wait {int(self.locked_until - time.monotonic()) + 1} s")
            return
        console = self.app
        try:
            staff = await console.db.call(login, console.secret, event.value)  # type: ignore[attr-defined]
        except DomainError as exc:
            self.failures += 1
            if self.failures >= MAX_TRIES:
                self.failures = 0
                self.locked_until = time.monotonic() + LOCKOUT_SECONDS
                error.update(f"too many wrong PINs: wait {int(LOCKOUT_SECONDS)} s")
            else:
                error.update(f"✗ {exc.message} 密码错误")
            return
        self.failures = 0
        error.update("")
        await console.logged_in(staff)  # type: ignore[attr-defined]
