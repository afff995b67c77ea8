"""The box's side of the public relay, run by `tablebox syncd` beside each relay target's outbox thread: it long-polls
the relay's inbox and applies what phones sent through it, and pushes the menu whenever what a diner would see
changes.

The inbox is a CouchDB-style checkpoint. Each message (an order or a waiter/bill request, with a per-store sequence
number) is applied in ONE transaction together with its `inbox_seen` row (`appliance.db.inbox`: source
"relay:TARGET@RELAY_STORE", message id = the diner's client key, or "request:<seq>"), so the next poll's `after=` (the
highest seq applied) acknowledges exactly what is in the store: a box killed mid-apply leaves nothing half-done and gets
the message again, and a message delivered twice (same client key or same seq) is a no-op.

An order is checked as the box's own POST /orders checks it (`appliance.contract.decode`), its table code resolved with
the store secret, and submitted on the `relay` channel with the diner's client key: the usual rows follow (kitchen
tickets, ERP rows) and, because the message is in inbox_seen, an outbox row for this relay target that the relay
adapter delivers as the "accepted" event. A refusal (forged code, sold out, price changed, table not open...) becomes
an `order.refused` outbox row for this relay target only, with the error the box's API would have answered
({code, message in the diner's language, details}); the relay shows it to the phone.

Stopping (SIGTERM): a poll in progress is abandoned, not awaited (nothing is lost: the next start polls from the last
applied seq); a message being applied finishes or rolls back whole.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw
import msgspec
import structlog

from appliance.contract.decode import normalize_lang, relayed_order, relayed_request, strict_decode
from appliance.contract.menu import IMAGE_PATH, render_menu, render_store
from appliance.contract.relay import (
    MAX_IMAGE_BYTES,
    OLD_CODES_PUSHED,
    OLD_STICKER,
    InboxMessage,
    MenuPush,
    RelayedOldStickerCallIn,
    TablePush,
    table_code_hash,
)
from appliance.db.connection import dumps, open_connection
from appliance.db.diner_input import order_request
from appliance.db.inbox import apply_message, last_applied_seq, move_menu_version_past
from appliance.db.orders import MenuCache, Snapshot, SubmitResult, submit_order
from appliance.db.outbox import queue_row
from appliance.db.store_settings import StoreSettings, load_store_settings
from appliance.db.tables import request_service, resolve_old_or_current_token, resolve_token, table_token
from appliance.domain.errors import DomainError
from appliance.domain.messages import message_for
from appliance.domain.money import format_money
from appliance.domain.orders import Channel
from appliance.domain.tokens import TableRef, sign_table_token
from appliance.images import NAME as PHOTO_NAME
from appliance.images import images_dir
from appliance.settings import BoxSettings
from appliance.store import read_secret
from sync.adapters.base import Rejected, Retryable
from sync.adapters.relay import DEFAULT_POLL_WAIT, MAX_POLL_WAIT, RelayClient
from sync.config import Target
from sync.outbox import Backoff

log = structlog.get_logger("sync.relay")

# A message that keeps failing with an unexpected error (a bug, not the store being busy) would hold up every order
# behind it: after this many tries it is refused with internal_error and the line moves on.
MAX_APPLY_FAILURES = 5
REJECTED_RETRY_SECONDS = 60.0  # the relay refuses the box (wrong secret): try again now and then, and say so
MIN_POLL_SECONDS = 1.0  # an empty answer faster than this (a relay not holding polls) is not re-asked at once
MENU_CHECK_SECONDS = 1.0
# While the relay is unreachable the relay counts the store offline and phones are told to join the Wi-Fi: once it is
# back, the box must be back within seconds, whatever the target's retry cap for its outbox rows.
RECONNECT_CAP_SECONDS = 30.0
ClientFactory = Callable[[str, Mapping[str, Any]], RelayClient]


def refusal(exc: DomainError, lang: str, settings: StoreSettings) -> dict[str, Any]:
    """The error the box's own API answers for a refusal: {code, message in the diner's language, details}."""
    details = json.loads(dumps(exc.details))
    money = (lambda minor: format_money(minor, settings.money)) if "total_minor" in details else None
    return {"code": exc.code, "message": message_for(exc.code, lang, details, exc.message, money), "details": details}


def menu_document(snap: Snapshot, minute_of_day: int, secret: bytes) -> MenuPush:
    """PUT /v1/box/menu: the store block, per language exactly what GET .../menu?lang= answers, and the tables, each
    with its `code_hash`: the SHA-256 of its current code, made with the store `secret` (the relay refuses a forged
    code with it, and cannot make one from it), and its last few voided codes' (`old_code_hashes`: the relay tells a
    genuine old sticker, whose waiter call it takes, from a forged one)."""
    settings = snap.settings
    return MenuPush(
        version=snap.version,
        store=msgspec.to_builtins(render_store(settings, settings.open_at(minute_of_day))),
        menus={
            lang: msgspec.to_builtins(render_menu(snap.menu, settings, lang, minute_of_day, version=snap.version))
            for lang in settings.languages
        },
        # What lets the relay name a sticker's table and refuse another store's, an old or a forged sticker early
        # (the box still checks every order's code with the secret, which never leaves it).
        token_store=settings.store_id,
        tables=[
            TablePush(
                id=t.id,
                name=t.name,
                area=t.area,
                seats=t.seats,
                version=t.token_version,
                active=t.active,
                code_hash=table_code_hash(table_token(secret, settings.store_id, t)),
                old_code_hashes=[
                    table_code_hash(sign_table_token(secret, TableRef(settings.store_id, t.id, version)))
                    for version in range(t.token_version - 1, max(t.token_version - 1 - OLD_CODES_PUSHED, -1), -1)
                ],
            )
            for t in sorted(snap.tables.values(), key=lambda t: t.id)
        ],
    )


def photo_names(document: MenuPush) -> list[str]:
    """The photo files a menu document shows (`"image": "/images/NAME"`), each once, in the order met."""
    names: dict[str, None] = {}
    for menu in document.menus.values():
        for category in menu.get("categories") or []:
            for item in category.get("items") or []:
                path = item.get("image")
                if isinstance(path, str) and path.startswith(IMAGE_PATH):
                    names[path[len(IMAGE_PATH) :]] = None
    return list(names)


class _Lang(msgspec.Struct):
    lang: object = None


class _Source(msgspec.Struct):
    source: object = None


class InboxApplier:
    """Applies relay inbox messages to the store, each in one transaction with its inbox_seen row."""

    def __init__(
        self,
        conn: apsw.Connection,
        target: str,
        secret: bytes,
        store_id: str,
        *,
        relay_store: str = "",
        after_submit: Callable[[SubmitResult], None] | None = None,
    ) -> None:
        self.conn = conn
        self.target = target
        self.relay_store = relay_store
        self.secret = secret
        self.store_id = store_id
        self.cache = MenuCache()
        self.after_submit = after_submit  # tests: a crash between the submit and the commit

    def apply(self, message: InboxMessage) -> str:
        """One message: 'accepted' (a new order), 'repeated' (its client key was already an order), 'refused',
        'request', 'request_refused', 'skipped' (a kind this box does not know) or 'duplicate' (already applied)."""
        return self._in_transaction(message, self._apply)

    def give_up(self, message: InboxMessage, error: str) -> str:
        """A message that failed MAX_APPLY_FAILURES times: an order is refused with internal_error (the phone is told
        to try again, which makes a new message), a request dropped; either way the line moves on."""

        def refuse(message: InboxMessage, message_id: str) -> str:
            log.error("relay.apply_given_up", target=self.target, seq=message.seq, error=error[:300])
            if message.kind == "order":
                self._refused(
                    message_id,
                    DomainError("internal_error", "the box could not apply this order"),
                    self._lang_of(message),
                )
                return "refused"
            return "skipped"

        return self._in_transaction(message, refuse)

    # -- the transaction -------------------------------------------------------------------------------------
    def _in_transaction(self, message: InboxMessage, handler: Callable[[InboxMessage, str], str]) -> str:
        seq = message.seq
        key = message.client_key
        message_id = key if message.kind == "order" and key else f"{message.kind}:{seq}"
        # Recorded in inbox_seen first: the order's own outbox rows then include this relay target.
        return apply_message(
            self.conn, self.target, self.relay_store, seq, message_id, lambda: handler(message, message_id)
        )

    def _apply(self, message: InboxMessage, message_id: str) -> str:
        kind = message.kind
        if kind == "order":
            return self._order(message, message_id)
        if kind == "request":
            return self._request(message)
        log.warning("relay.unknown_message", target=self.target, seq=message.seq, kind=kind[:40])
        return "skipped"

    # -- orders ----------------------------------------------------------------------------------------------
    @staticmethod
    def _lang_of(message: InboxMessage) -> str:
        """The phone's language as its body says, even when the body is refused (its refusal is worded in it)."""
        try:
            lang = msgspec.json.decode(message.body, type=_Lang).lang
        except msgspec.DecodeError:
            lang = None
        return normalize_lang(lang if isinstance(lang, str) else None)

    def _table(self, message: InboxMessage) -> Any:
        return resolve_token(self.cache.get(self.conn).tables.get, self.secret, self.store_id, message.token)

    def _order(self, message: InboxMessage, client_key: str) -> str:
        lang = self._lang_of(message)
        try:
            with self.conn:  # a savepoint: a refused order leaves nothing behind but its refusal
                data = relayed_order(message.body)  # as the box's POST /orders: body, then code, then notes
                lang = normalize_lang(data.lang)
                if data.client_key != client_key:
                    raise DomainError(
                        "invalid_body",
                        "the order's client_key is not the relay's",
                        field="client_key",
                        problem="client_key: not the key the relay stored it under",
                        errors=[{"field": "client_key", "problem": "not the key the relay stored it under"}],
                    )
                table = self._table(message)
                result = submit_order(
                    self.conn, table, order_request(data, lang=lang, channel=Channel.RELAY), self.cache
                )
                if self.after_submit is not None:
                    self.after_submit(result)
        except DomainError as exc:
            self._refused(client_key, exc, lang)
            log.info("relay.order_refused", target=self.target, seq=message.seq, client_key=client_key, code=exc.code)
            return "refused"
        order = result.order
        # The same order may already be here from the LAN (the phone left the Wi-Fi and retried through the relay):
        # the relay still needs its "accepted" event. For a new order submit_order queued it already (a no-op here).
        queue_row(self.conn, self.target, "order.submitted", f"order.submitted:{client_key}", order)
        log.info(
            "relay.order_applied",
            target=self.target,
            seq=message.seq,
            client_key=client_key,
            order_id=order["id"],
            ticket_no=order["ticket_no"],
            table=order["table"],
            created=result.created,
        )
        return "accepted" if result.created else "repeated"

    def _refused(self, client_key: str, exc: DomainError, lang: str) -> None:
        error = refusal(exc, lang, self.cache.get(self.conn).settings)
        queue_row(
            self.conn,
            self.target,
            "order.refused",
            f"order.refused:{client_key}",
            {"client_key": client_key, "error": error},
        )

    # -- waiter and bill requests ----------------------------------------------------------------------------
    @staticmethod
    def _source_of(message: InboxMessage) -> object:
        try:
            return msgspec.json.decode(message.body, type=_Source).source
        except msgspec.DecodeError:
            return None

    def _request(self, message: InboxMessage) -> str:
        """A waiter or bill call, applied once (the message's inbox_seen row). One marked `source: "old_sticker"`
        (the relay's old-sticker call) is a waiter call that may carry an OLD version of its table's code: genuine
        (the MAC is checked with the store secret) and of a table still in use; it is stored with source
        'old_sticker' so staff bring the new code. Every other request takes the current code only."""
        source: str | None = None
        try:
            with self.conn:  # a savepoint: a refused request leaves nothing behind but its refusal
                if self._source_of(message) == OLD_STICKER:
                    data: Any = strict_decode(bytes(message.body), RelayedOldStickerCallIn)
                    table, old = resolve_old_or_current_token(
                        self.cache.get(self.conn).tables.get, self.secret, self.store_id, message.token
                    )
                    source = OLD_STICKER if old else None
                else:
                    data = relayed_request(message.body)
                    table = self._table(message)
                _, created = request_service(self.conn, table, data.kind, source)
        except DomainError as exc:
            log.info("relay.request_refused", target=self.target, seq=message.seq, code=exc.code)
            key = message.key
            if key is not None and key.startswith("request:"):  # the relay's key: the phone hears why
                queue_row(
                    self.conn,
                    self.target,
                    "request.refused",
                    f"request.refused:{key}",
                    {
                        "client_key": key,
                        "error": refusal(exc, self._lang_of(message), self.cache.get(self.conn).settings),
                    },
                )
            return "request_refused"
        log.info(
            "relay.request_applied",
            target=self.target,
            seq=message.seq,
            table=table.name,
            kind=data.kind,
            created=created,
            source=source,
        )
        return "request"


class RelayLink:
    """Two threads for one relay target: the inbox (long-poll, apply) and the menu pusher."""

    def __init__(
        self,
        settings: BoxSettings,
        target: Target,
        stop: threading.Event,
        *,
        client_factory: ClientFactory = RelayClient,
        secret: bytes | None = None,
        after_submit: Callable[[SubmitResult], None] | None = None,
    ) -> None:
        self.db_path: Path = settings.db_path
        self.vfs = settings.sqlite_vfs or None
        self.target = target
        self.stop_event = stop
        self.secret = secret if secret is not None else read_secret(settings.secret_path)
        config = target.config
        wait = config.get("poll_wait_seconds", DEFAULT_POLL_WAIT)
        if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_POLL_WAIT:
            raise ValueError(
                f"sync target {target.name}: poll_wait_seconds must be a whole number from 0 to "
                f"{MAX_POLL_WAIT}, got {wait!r}"
            )
        self.poll_wait = wait
        check = config.get("menu_check_seconds", MENU_CHECK_SECONDS)
        if isinstance(check, bool) or not isinstance(check, (int, float)) or not 0.01 <= check <= 3600:
            raise ValueError(f"sync target {target.name}: menu_check_seconds must be from 0.01 to 3600, got {check!r}")
        self.menu_check = float(check)
        self.after_submit = after_submit
        self.inbox_client = client_factory(target.name, config)
        self.menu_client = client_factory(target.name, config)
        self.backoff = Backoff(cap=min(float(target.retry_cap_seconds), RECONNECT_CAP_SECONDS))
        self.inbox_beat = self.menu_beat = time.monotonic()
        self.applied = 0
        self.menu_pushed: int | None = None  # the version the relay last said it holds
        self.images_dir = images_dir(settings.data_dir)
        self.photos_on_relay: set[str] = set()  # photos the relay holds, as far as this process has learnt
        self.photos_sent = 0
        self.polling_since: float | None = None
        self.inbox_thread = threading.Thread(target=self._inbox_loop, name=f"relay-inbox-{target.name}", daemon=True)
        self.menu_thread = threading.Thread(target=self._menu_loop, name=f"relay-menu-{target.name}", daemon=True)

    @property
    def threads(self) -> tuple[threading.Thread, threading.Thread]:
        return self.inbox_thread, self.menu_thread

    def start(self) -> RelayLink:
        self.inbox_thread.start()
        self.menu_thread.start()
        return self

    def health(self, now: float, stuck_after: float) -> str | None:
        for thread, beat, what in (
            (self.inbox_thread, self.inbox_beat, "inbox"),
            (self.menu_thread, self.menu_beat, "menu"),
        ):
            if not thread.is_alive():
                return f"the relay {what} thread of sync target {self.target.name} has stopped"
            if now - beat > stuck_after:
                return (
                    f"the relay {what} thread of sync target {self.target.name} has been stuck for {now - beat:.0f} s"
                )
        return None

    def join(self, timeout: float) -> None:
        """After stop is set: wait for a message being applied to finish; a long-poll in progress is abandoned (the
        threads are daemons; the next start polls from the last applied seq)."""
        deadline = time.monotonic() + timeout
        self.menu_thread.join(max(0.0, deadline - time.monotonic()))
        while self.inbox_thread.is_alive() and time.monotonic() < deadline:
            if self.polling_since is not None:  # waiting on the relay: nothing of ours is in hand
                log.info("relay.poll_abandoned", target=self.target.name)
                break
            self.inbox_thread.join(0.05)
        if not any(t.is_alive() for t in self.threads):
            self.close()

    def close(self) -> None:
        self.inbox_client.close()
        self.menu_client.close()

    # -- the inbox -------------------------------------------------------------------------------------------
    def _inbox_loop(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        try:
            store_id = load_store_settings(conn).store_id
            relay_store = str(self.target.config.get("store_id") or "")  # as sync.config.inbox_source reads it
            applier = InboxApplier(
                conn, self.target.name, self.secret, store_id, relay_store=relay_store, after_submit=self.after_submit
            )
            failures = 0
            apply_failures: dict[int, int] = {}
            while not self.stop_event.is_set():
                self.inbox_beat = time.monotonic()
                try:
                    after = last_applied_seq(conn, self.target.name, relay_store)
                    started = time.monotonic()
                    self.polling_since = started
                    try:
                        messages = self.inbox_client.poll(after, self.poll_wait)
                    finally:
                        self.polling_since = None
                except Retryable as exc:
                    failures += 1
                    wait = self.backoff.delay(failures)
                    log.warning(
                        "relay.poll_failed",
                        target=self.target.name,
                        attempts=failures,
                        wait_seconds=round(wait, 2),
                        error=exc.message,
                    )
                    self.stop_event.wait(wait)
                    continue
                except Rejected as exc:
                    failures += 1
                    log.error("relay.refused_box", target=self.target.name, error=exc.message)
                    self.stop_event.wait(REJECTED_RETRY_SECONDS)
                    continue
                except apsw.Error as exc:
                    log.error("relay.store_error", target=self.target.name, error=str(exc))
                    self.stop_event.wait(1.0)
                    continue
                if failures:
                    log.info("relay.reconnected", target=self.target.name, after=after)
                failures = 0
                self.inbox_beat = time.monotonic()
                if not messages:
                    rest = min(MIN_POLL_SECONDS, self.poll_wait or MIN_POLL_SECONDS) - (time.monotonic() - started)
                    if rest > 0:
                        self.stop_event.wait(rest)
                    continue
                self._apply_all(applier, messages, apply_failures)
                if last_applied_seq(conn, self.target.name, relay_store) == after and not self.stop_event.is_set():
                    # Only messages at or below after= (a relay answering out of protocol): do not ask again at once.
                    log.warning(
                        "relay.nothing_new", target=self.target.name, after=after, seqs=[m.seq for m in messages][:10]
                    )
                    self.stop_event.wait(MIN_POLL_SECONDS)
        except Exception:
            log.exception("relay.inbox_crashed", target=self.target.name)
            raise
        finally:
            conn.close()

    def _apply_all(self, applier: InboxApplier, messages: list[InboxMessage], apply_failures: dict[int, int]) -> None:
        """In seq order; on a failure stop there: the next poll (after= the last applied) brings it back."""
        for message in messages:
            if self.stop_event.is_set():
                return
            self.inbox_beat = time.monotonic()
            seq = message.seq
            try:
                outcome = applier.apply(message)
            except apsw.Error as exc:  # the store busy, full or failing: nothing of it was kept
                log.error("relay.apply_failed", target=self.target.name, seq=seq, error=str(exc))
                self.stop_event.wait(1.0)
                return
            except Exception as exc:
                count = apply_failures.get(seq, 0) + 1
                apply_failures[seq] = count
                log.exception("relay.apply_error", target=self.target.name, seq=seq, attempts=count)
                if count >= MAX_APPLY_FAILURES:
                    try:
                        applier.give_up(message, repr(exc))
                    except apsw.Error as store_exc:
                        log.error("relay.apply_failed", target=self.target.name, seq=seq, error=str(store_exc))
                    apply_failures.pop(seq, None)
                self.stop_event.wait(self.backoff.delay(count))
                return
            apply_failures.pop(seq, None)
            self.applied += outcome in ("accepted", "refused", "request", "request_refused", "repeated")
            log.debug("relay.applied", target=self.target.name, seq=seq, outcome=outcome)

    # -- the menu --------------------------------------------------------------------------------------------
    def _menu_loop(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        cache = MenuCache()
        pushed: tuple[Any, ...] | None = None
        first = True
        failures = 0
        next_try = 0.0
        try:
            while not self.stop_event.is_set():
                self.menu_beat = time.monotonic()
                try:
                    snap = cache.get(conn)
                    minute = snap.settings.minute_of_day()
                    # Open now? Which windowed dishes are served now? These change with the clock, not the version:
                    # when one flips, the version moves (phones' ETags and the relay go by the version alone).
                    shown = (snap.version, snap.settings.open_at(minute), snap.menu.unavailable_at(minute))
                    if pushed is not None and shown != pushed and shown[0] == pushed[0]:
                        self._move_version(conn, snap.version, "the clock changed what a diner sees")
                    elif shown != pushed and time.monotonic() >= next_try:
                        document = menu_document(snap, minute, self.secret)
                        self._push_photos(photo_names(document))
                        stored = self.menu_client.push_menu(document)
                        pushed, failures = shown, 0
                        self.menu_pushed = stored
                        log.info("relay.menu_pushed", target=self.target.name, version=snap.version, stored=stored)
                        if stored > snap.version or (first and stored == snap.version):
                            # The relay is ahead (this box was restored from a backup), or it already had this
                            # version from before this start (pushed under another clock, maybe): move past it.
                            self._move_version(conn, stored, "the relay already holds this menu version")
                            pushed = None
                        first = False
                except (Retryable, Rejected) as exc:
                    failures += 1
                    wait = REJECTED_RETRY_SECONDS if isinstance(exc, Rejected) else self.backoff.delay(failures)
                    next_try = time.monotonic() + wait
                    log.warning(
                        "relay.menu_push_failed",
                        target=self.target.name,
                        attempts=failures,
                        wait_seconds=round(wait, 2),
                        error=exc.message,
                    )
                except apsw.Error as exc:
                    log.error("relay.store_error", target=self.target.name, error=str(exc))
                self.stop_event.wait(self.menu_check)
        except Exception:
            log.exception("relay.menu_crashed", target=self.target.name)
            raise
        finally:
            conn.close()

    def _push_photos(self, names: Sequence[str]) -> None:
        """Before a menu push: send the relay the photos it shows that the relay lacks, so a phone never gets a
        menu pointing at a photo the relay cannot serve. Only names this process has not yet learnt the relay
        holds are asked about. A photo missing or damaged on the box is logged and skipped (the menu still goes;
        the next push asks again). Failures raise Retryable / Rejected, as the menu push does (the pass is tried
        again), except a relay without the photo API: the menu goes without photos."""
        ask = []
        for name in names:
            if PHOTO_NAME.fullmatch(name):
                if name not in self.photos_on_relay:
                    ask.append(name)
            else:
                log.warning("relay.image_invalid", target=self.target.name, name=name[:80], why="not a photo name")
        if not ask:
            return
        try:
            missing = self.menu_client.missing_images(ask)
        except Rejected as exc:
            if exc.status not in (404, 405):
                raise
            log.warning("relay.images_unsupported", target=self.target.name, error=exc.message)
            return
        self.photos_on_relay.update(set(ask) - set(missing))
        for name in missing:
            body = self._photo(name)
            if body is None:
                continue
            stored = self.menu_client.put_image(name, body)
            self.photos_on_relay.add(name)
            self.photos_sent += 1
            log.info("relay.image_pushed", target=self.target.name, name=name, bytes=len(body), new=stored)

    def _photo(self, name: str) -> bytes | None:
        """A photo's bytes as the relay takes them, or None (logged): missing, too large, or not what its name
        says (the relay would refuse it, and the menu would wait on it)."""
        try:
            body = (self.images_dir / name).read_bytes()
        except OSError as exc:
            log.warning("relay.image_missing", target=self.target.name, name=name, error=exc.strerror or str(exc))
            return None
        if (
            len(body) > MAX_IMAGE_BYTES
            or not body.startswith(b"\xff\xd8\xff")
            or hashlib.sha256(body).hexdigest()[:16] + ".jpg" != name
        ):
            log.warning(
                "relay.image_invalid",
                target=self.target.name,
                name=name,
                bytes=len(body),
                why="too large, not a JPEG, or not the content its name says",
            )
            return None
        return body

    def _move_version(self, conn: apsw.Connection, past: int, why: str) -> None:
        """Move the store's menu version past `past` (unless something else already moved it), so the next push is
        a newer version than anything the relay or a phone holds. The web process re-reads the menu once."""
        if move_menu_version_past(conn, past):
            log.info("relay.menu_version_moved", target=self.target.name, version=past + 1, why=why)
