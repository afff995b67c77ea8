"""The public relay as a sync target: the box's signed HTTP client for it (inbox long-poll, menu push, order events)
and the adapter that turns the relay target's outbox rows into order events for the diners' phones.

Settings (`[sync.NAME]` with `kind = "relay"`; the secret may come from TABLEBOX_SYNC_<NAME>_API_SECRET)::

    base_url = "https://relay.example.com"   # required; the relay's address (a reverse proxy in front of it must
                                             # pass the path and query on unchanged: they are signed)
    store_id = "k3Jd9QxA"                    # required: what `tablebox relay enroll STORE` printed
    api_secret = "<64 hex digits>"           # required, SECRET: the store's relay secret printed with it
    timeout_seconds = 10                     # every request; a long-poll may take poll_wait_seconds longer
    poll_wait_seconds = 25                   # how long the relay holds an inbox poll open when it has nothing
    menu_check_seconds = 1                   # how often the menu version is looked at (a change is pushed)
    verify_tls = true                        # false only for a test relay with a self-signed certificate
    ca_file = "/etc/tablebox/relay-ca.pem"   # or trust this CA for it
    pull_minutes = 0                         # ignored: the relay has no catalog

Every request carries the X-Tablebox-* signature headers (`appliance.contract.signing.sign`: HMAC-SHA256 over method,
path and query exactly as sent, timestamp, nonce and the body's SHA-256, keyed with bytes.fromhex(api_secret)).

Order events (`POST /v1/box/events`), one per outbox row of the relay target: `accepted` (id `accepted:<client_key>`,
the order as the box stored it) for `order.submitted`; `status` (id `status:<client_key>:<status>`, the order as it
is now with that status) for `order.status`, and for a voided line (id `status:<client_key>:line_voided:<the voided
line numbers>`, with the new totals); `refused` (id `refused:<client_key>`, the box's error {code, message,
details}) for `order.refused`. The relay ignores an event id it already has, so a retried delivery
is harmless.

Dish photos (`sync/relay_link.py`, before each menu push): `POST /v1/box/images/missing` {"names": [...]} asks which
of the menu's photos the relay lacks, `PUT /v1/box/images/NAME` sends one (the JPEG bytes, signed as they are).

`tablebox sync check` (`RelayAdapter.check`): reachable (`GET /healthz` answers as a relay does: 200 and its
version; a 503 is its database failing), then one signed request that changes nothing (`POST /v1/box/images/missing`
with no names): "store enrolled" (the relay knows store_id: else 401 unknown_store), "signature accepted" (api_secret
is the store's: else 401 bad_signature; the box's clock within 5 minutes: else 401 stale_timestamp). A plain-http
base_url to another host, or verify_tls = false, is a warning.

Errors (the classification every target shares, `sync/adapters/http.py`): connection refused, timeouts, a dropped
connection, 5xx, 408, 425 and 429 are `Retryable` (with the answer's Retry-After); 401/403 `bad_signature`, `unknown_store` or `missing_signature` are `Rejected` ("check store_id and the relay secret");
`stale_timestamp` is `Retryable` with "the box's clock is off" (once NTP has set it the next attempt goes through);
`replayed_nonce` is `Retryable` (the next attempt has a fresh nonce); other 4xx are `Rejected` with the relay's
message. Logs never show the secret.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import structlog

from appliance.contract.decode import nested_deeper_than
from appliance.contract.relay import (
    MAX_IMAGE_NAMES,
    BoxEvent,
    BoxEvents,
    ImageNames,
    InboxMessage,
    InboxPage,
    MenuPush,
    order_view,
)
from appliance.contract.signing import sign
from sync.adapters.base import Capability, Catalog, Check, CheckState, OrderDoc, PaymentDoc, Rejected, Retryable
from sync.adapters.http import HttpAdapter, Verdict

log = structlog.get_logger("sync.relay")

STORE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
SECRET_HEX = re.compile(r"[0-9a-fA-F]{64}")
DEFAULT_POLL_WAIT = 25
MAX_POLL_WAIT = 25
_MESSAGE_CAP = 300


def create(name: str, config: Mapping[str, Any]) -> RelayAdapter:
    return RelayAdapter(name, config)


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def relay_settings(name: str, config: Mapping[str, Any]) -> tuple[str, bytes]:
    """The store id and the HMAC key of a relay target, checked: ValueError says what to fix."""
    store_id = config.get("store_id")
    if not store_id:
        raise ValueError(
            f"sync target {name}: store_id is missing: run `tablebox relay enroll STORE_NAME` on the "
            "relay and copy the store_id it prints"
        )
    if not isinstance(store_id, str) or not STORE_ID.fullmatch(store_id):
        raise ValueError(
            f"sync target {name}: store_id must be the 8-64 letters, digits, _ or - that "
            "`tablebox relay enroll` printed"
        )
    secret = config.get("api_secret")
    if not secret:
        raise ValueError(
            f"sync target {name}: api_secret is missing: the 64 hex digits `tablebox relay enroll` "
            f"printed, in a 0600 settings file or in $TABLEBOX_SYNC_{name.upper()}_API_SECRET"
        )
    if not isinstance(secret, str) or not SECRET_HEX.fullmatch(secret.strip()):
        raise ValueError(
            f"sync target {name}: api_secret must be the 64 hex digits `tablebox relay enroll` printed (not shown here)"
        )
    return store_id, bytes.fromhex(secret.strip())


def relay_message(content: bytes) -> tuple[str, str]:
    """The relay's {"error": {"code", "message"}} as (code, message); ("", start of the body) otherwise."""
    try:
        if nested_deeper_than(content):  # json.loads recurses: a hostile answer must not crash syncd
            raise ValueError("nested too deep")
        data = json.loads(content)
    except ValueError:
        return "", content[:_MESSAGE_CAP].decode("utf-8", "replace").strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:_MESSAGE_CAP]
    return "", ""


class RelayClient(HttpAdapter):
    """Signed requests to the relay's box API, every failure turned into Retryable or Rejected."""

    peer = "the relay"
    user_agent = "tablebox-box"

    def __init__(self, name: str, config: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> None:
        store_id, secret = relay_settings(name, config)
        super().__init__(name, config, secrets=(secret.hex(), str(config.get("api_secret") or "").strip()))
        self.store_id, self._secret = store_id, secret
        self.clock = clock

    def __repr__(self) -> str:
        return f"RelayClient({self.name!r}, {self.base_url!r}, store={self.store_id!r})"

    # -- the inbox, the menu, order events -----------------------------------------------------------------
    def poll(self, after: int, wait: int) -> list[InboxMessage]:
        """Inbox messages with seq > after, oldest first (the relay holds the poll up to `wait` seconds when it has
        none). Asking after=N acknowledges everything up to N."""
        path = f"/v1/box/inbox?after={int(after)}&wait={int(wait)}"
        response = self.call_raw("GET", path, timeout=self.timeout + wait)
        try:
            page = msgspec.json.decode(response.content, type=InboxPage)
        except msgspec.ValidationError:
            raise Retryable(
                f'{self.name}: the relay\'s inbox answer is not {{"messages": [{{"seq": int, ...}}]}}'
            ) from None
        except msgspec.DecodeError:
            raise self.not_json(response, path) from None
        return sorted(page.messages, key=lambda m: m.seq)

    def push_menu(self, document: MenuPush) -> int:
        """The menu snapshot; returns the version the relay now holds (higher than ours: it ignored ours)."""
        data = self.call("PUT", "/v1/box/menu", document)
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, int):
            raise Retryable(f"{self.name}: the relay's menu answer has no version")
        return version

    def post_events(self, events: Sequence[BoxEvent]) -> int:
        data = self.call("POST", "/v1/box/events", BoxEvents(events=list(events)))
        stored = data.get("stored") if isinstance(data, dict) else None
        return stored if isinstance(stored, int) else 0

    # -- dish photos ------------------------------------------------------------------------------------------
    def missing_images(self, names: Sequence[str]) -> list[str]:
        """Which of these photo names the relay does not hold, in the order given (asked 500 at a time)."""
        missing: list[str] = []
        for start in range(0, len(names), MAX_IMAGE_NAMES):
            asked = ImageNames(names=list(names[start : start + MAX_IMAGE_NAMES]))
            data = self.call("POST", "/v1/box/images/missing", asked)
            found = data.get("missing") if isinstance(data, dict) else None
            if not isinstance(found, list) or not all(isinstance(name, str) for name in found):
                raise Retryable(f'{self.name}: the relay\'s answer about photos is not {{"missing": [names]}}')
            missing += found
        return missing

    def put_image(self, name: str, body: bytes) -> bool:
        """One photo (its JPEG bytes, named by their SHA-256); True if the relay did not have it yet."""
        data = self.call("PUT", f"/v1/box/images/{name}", raw=body, content_type="image/jpeg")
        return bool(data.get("stored")) if isinstance(data, dict) else False

    # -- signing and error mapping --------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path_and_query: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/octet-stream",
        timeout: float | None = None,
    ) -> Any:
        """A signed request (see call_raw); the answer's JSON."""
        response = self.call_raw(method, path_and_query, body, raw=raw, content_type=content_type, timeout=timeout)
        try:
            if nested_deeper_than(response.content):  # json.loads recurses: a hostile relay must not crash syncd
                raise ValueError("nested too deep")
            return json.loads(response.content)
        except ValueError:
            # A proxy's HTML page with a 200 (a captive portal, a maintenance page) is not the relay answering.
            raise self.not_json(response, path_and_query) from None

    def call_raw(
        self,
        method: str,
        path_and_query: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/octet-stream",
        timeout: float | None = None,
    ) -> httpx.Response:
        """A signed request; `body` (a contract Struct, or plain data) is sent as JSON, or `raw` bytes as they are
        (with `content_type`). The signature covers the exact bytes sent. Returns a 2xx answer."""
        if raw is not None:
            content, kind = raw, content_type
        elif body is not None:
            content, kind = msgspec.json.encode(body), "application/json"
        else:
            content, kind = b"", None
        response = self.send_signed(method, path_and_query, content, kind, timeout)
        code, said = (
            relay_message(response.content) if self.classify(response.status_code) is not Verdict.OK else ("", "")
        )
        self.raise_for_status(response, f"{code}: {said}" if code else said)
        return response

    def send_signed(
        self, method: str, path_and_query: str, content: bytes, kind: str | None, timeout: float | None = None
    ) -> httpx.Response:
        """A signed request, whatever its answer (no answer at all is Retryable)."""
        request = self.http.build_request(
            method,
            path_and_query,
            content=content or None,
            headers={"Content-Type": kind} if kind else None,
            timeout=httpx.Timeout(timeout) if timeout else httpx.USE_CLIENT_DEFAULT,
        )
        signed = request.url.raw_path.decode("ascii")  # path and query exactly as they go on the wire
        request.headers.update(sign(self.store_id, self._secret, method, signed, content, now=self.clock()))
        return self.send_request(request)

    def not_json(self, response: httpx.Response, path_and_query: str) -> Retryable:
        return self.retryable(
            f"{self.name}: HTTP {response.status_code} from {path_and_query.split('?')[0]} is not "
            f"JSON: {response.content[:80]!r}",
            response,
        )

    def credentials_refused(self, response: httpx.Response, said: str) -> Exception:
        status = response.status_code
        code, _ = relay_message(response.content)
        detail = f" ({said})" if said else ""
        if code == "stale_timestamp":
            return self.retryable(
                f"{self.name}: the relay refused the request's time: the box's clock is off by more "
                f"than 5 minutes{detail}. Setting the time (NTP: `timedatectl`) fixes it; orders "
                "through the relay wait until then",
                response,
            )
        if code == "replayed_nonce":  # the next attempt is signed afresh, with a new nonce
            return self.retryable(f"{self.name}: the relay saw this request's nonce before{detail}", response)
        return self.rejected(
            f"{self.name}: the relay refused the box's signature{detail}: check store_id and the relay "
            f"secret (api_secret) of [sync.{self.name}] against what `tablebox relay enroll` printed",
            status,
        )


def _view_of_doc(order: OrderDoc) -> dict[str, Any]:
    if order.view is not None:
        return order_view(order.view)
    _, _, number = order.ticket.partition("#")
    return {
        "id": order.order_id,
        "ticket_no": int(number) if number.isdigit() else None,
        "status": order.status,
        "channel": "relay",
        "table": order.table,
        "client_key": order.order_ref,
        "currency": order.currency,
        "subtotal_minor": order.subtotal_minor,
        "service_charge_minor": order.service_charge_minor,
        "total_minor": order.total_minor,
        "tax_minor": order.tax_minor,
        "note": order.note,
        "created_at": order.created_at,
        "updated_at": order.created_at,
        "cancel_reason": None,
        "lines": [
            {
                "line_no": n,
                "item_id": None,
                "names": {"zh": line.name},
                "variant_id": None,
                "variant_names": None,
                "options": [],
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "line_total_minor": line.line_total_minor,
                "note": line.note,
                "status": "active",
            }
            for n, line in enumerate(order.lines, start=1)
        ],
    }


class RelayAdapter:
    """The relay target's outbox rows as order events for the phones (see the module docstring)."""

    # The outbox engine hands push_status the order as it is now and the box's refusals; the worker runs the link
    # (inbox and menu) beside it and never pulls a catalog from it.
    capabilities = frozenset({Capability.ORDER_VIEW, Capability.REFUSALS, Capability.INBOX})

    # `tablebox sync check` sets these before check(); the relay needs neither (it has no catalog, no taxes).
    expected_codes: Sequence[str] = ()
    box_facts: Mapping[str, Any] = {}

    def __init__(self, name: str, config: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.client = RelayClient(name, config, clock=clock)
        self.verify_tls = config.get("verify_tls", True) is not False or bool(config.get("ca_file"))

    def __repr__(self) -> str:
        return f"RelayAdapter({self.name!r}, {self.client.base_url!r})"

    def close(self) -> None:
        self.client.close()

    def pull_catalog(self) -> Catalog:
        raise Rejected("the relay has no catalog")

    def pull_stock(self) -> Mapping[str, int]:
        raise Rejected("the relay has no catalog")

    def push_order(self, order: OrderDoc) -> str:
        event_id = f"accepted:{order.order_ref}"
        self._post(
            BoxEvent(
                id=event_id,
                client_key=order.order_ref,
                type="accepted",
                order=_view_of_doc(order),
                error=None,
                at=order.created_at,
            )
        )
        return event_id

    def push_status(
        self, order_ref: str, status: str, reason: str | None, order: Mapping[str, Any] | None = None
    ) -> None:
        if status == "refused":
            try:
                error = json.loads(reason or "")
            except ValueError:
                error = None
            if not isinstance(error, dict) or not isinstance(error.get("code"), str):
                raise Rejected(f"{self.name}: a refused order's row holds no error {{code, message, details}}")
            self._post(
                BoxEvent(
                    id=f"refused:{order_ref}",
                    client_key=order_ref,
                    type="refused",
                    order=None,
                    error=error,
                    at=utc_stamp(),
                )
            )
            return
        view = order_view(order) if order is not None else None
        if status == "line_voided":
            voided = ",".join(
                str(line["line_no"]) for line in (view or {}).get("lines", []) if line.get("status") == "voided"
            )
            event_id = f"status:{order_ref}:line_voided:{voided or reason or ''}"
        else:
            event_id = f"status:{order_ref}:{status}"
        self._post(BoxEvent(id=event_id, client_key=order_ref, type="status", order=view, error=None, at=utc_stamp()))

    def push_payment(self, payment: PaymentDoc) -> str:
        return ""  # the relay shows phones their orders, not the store's payments

    # -- tablebox sync check -------------------------------------------------------------------------------------
    def check(self) -> Sequence[Check]:
        """Reachable, the store enrolled, the box's signature accepted (see the module docstring); stops at the
        first check the next ones depend on."""
        client = self.client
        section = f"[sync.{self.name}]"
        warnings = self._transport_warnings()
        try:
            health = client.send("GET", "/healthz")
        except Retryable as exc:
            return [Check("reachable", CheckState.FAIL, exc.message, _unreachable_fix(exc.message, section)), *warnings]
        reachable = self._health_check(health, section)
        if reachable.state is CheckState.FAIL:
            return [reachable, *warnings]
        try:
            # Signed, and harmless: asks which of no photos the relay lacks (no heartbeat, no acknowledgement).
            answer = client.send_signed(
                "POST", "/v1/box/images/missing", msgspec.json.encode(ImageNames(names=[])), "application/json"
            )
        except Retryable as exc:
            return [reachable, *warnings, Check("signature accepted", CheckState.FAIL, exc.message, "Run it again")]
        return [reachable, *warnings, *self._signed_checks(answer, section)]

    def _transport_warnings(self) -> list[Check]:
        found = []
        url = urllib.parse.urlsplit(self.client.base_url)
        if url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
            found.append(
                Check(
                    "https",
                    CheckState.WARN,
                    f"base_url is plain http ({self.client.base_url}): requests are signed, but orders cross the "
                    "internet readable by anyone on the way",
                    f"Use the relay's https:// address in base_url of [sync.{self.name}]",
                )
            )
        if not self.verify_tls:
            found.append(
                Check(
                    "TLS certificate",
                    CheckState.WARN,
                    "verify_tls = false: the relay's certificate is not checked",
                    f"Only for a test relay: remove verify_tls from [sync.{self.name}], or trust its CA with ca_file",
                )
            )
        return found

    def _health_check(self, response: httpx.Response, section: str) -> Check:
        status = response.status_code
        where = self.client.base_url
        try:
            data = json.loads(response.content) if not nested_deeper_than(response.content) else None
        except ValueError:
            data = None
        said = data if isinstance(data, dict) and isinstance(data.get("status"), str) else None
        if 300 <= status < 400:
            return Check(
                "reachable",
                CheckState.FAIL,
                f"{where}/healthz redirects to {response.headers.get('location', '?')}",
                f"Set base_url in {section} to the address it points to",
            )
        if said is None:
            return Check(
                "reachable",
                CheckState.FAIL,
                f"{where} answered HTTP {status} to /healthz, not as a Tablebox relay does: "
                f"{response.content[:80].decode('utf-8', 'replace')!r}",
                f"Check base_url in {section}: the relay's own address, without a path (a proxy in front of it "
                "must pass /healthz and /v1/box/ through)",
            )
        version = f"relay {said.get('version')} at {where}" if said.get("version") else f"relay at {where}"
        if status == 503 or said["status"] != "ok":
            return Check(
                "reachable",
                CheckState.FAIL,
                f"{version} answers, but its database is failing (healthz {status}: {said['status']})",
                "The relay's operator must look at it (its journal: relay.storage_failed); orders wait in the "
                "box meanwhile",
            )
        return Check("reachable", CheckState.OK, version)

    def _signed_checks(self, response: httpx.Response, section: str) -> list[Check]:
        store = Check("store enrolled", CheckState.OK, f"the relay knows store {self.client.store_id}")
        status = response.status_code
        code, said = relay_message(response.content)
        detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {said}" if said else "")
        secret_fix = (
            f"Set api_secret in {section} (or $TABLEBOX_SYNC_{self.name.upper()}_API_SECRET) to the 64 hex digits "
            "`tablebox relay enroll` printed with this store_id; enrolling again prints a new pair"
        )
        if self.client.classify(status) is Verdict.OK:
            return [store, Check("signature accepted", CheckState.OK, "a request signed with api_secret went through")]
        if code == "unknown_store":
            return [
                Check(
                    "store enrolled",
                    CheckState.FAIL,
                    f"the relay knows no store {self.client.store_id} ({detail})",
                    f"Check store_id in {section} against what `tablebox relay enroll STORE_NAME` printed on the "
                    "relay (run it there if the store was never enrolled)",
                )
            ]
        if code == "bad_signature":
            return [
                store,
                Check("signature accepted", CheckState.FAIL, f"the relay refused the signature ({detail})", secret_fix),
            ]
        if code == "stale_timestamp":
            return [
                store,
                Check(
                    "signature accepted",
                    CheckState.FAIL,
                    f"the relay refused the box's time ({detail})",
                    "Set the box's clock: `timedatectl` shows it; NTP must reach a time server (ntp_server setting)",
                ),
            ]
        if status == 429:
            return [
                Check(
                    "signature accepted",
                    CheckState.WARN,
                    f"not checked: the relay is limiting requests from this address ({detail})",
                    "Run the check again in a minute",
                )
            ]
        return [
            Check(
                "signature accepted",
                CheckState.FAIL,
                f"the relay did not take a signed request ({detail})",
                "Run the check again; if it stays, the relay's operator must look at its journal",
            )
        ]

    def _post(self, event: BoxEvent) -> None:
        self.client.post_events([event])
        log.info("relay.event_sent", target=self.name, type=event.type, event_id=event.id)


def _unreachable_fix(message: str, section: str) -> str:
    if "CERTIFICATE" in message.upper():
        return f"The relay's TLS certificate is not trusted: renew it, or trust its CA with ca_file in {section}"
    return (
        f"Check base_url in {section} and that the box reaches the internet (`curl -sS BASE_URL/healthz` on the "
        "box); orders wait in the box meanwhile"
    )


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = RelayAdapter
