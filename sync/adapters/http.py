"""One HTTP base for every sync target's client: the ERP adapters (`rest`, `erpnext`, `odoo`) and the relay client
(`sync/adapters/relay.py`, which the relay link in `sync/relay_link.py` uses too).

What they all share lives here, once:

- The client (`HttpAdapter`): `base_url` checked (http:// or https://), `timeout_seconds` for every request (connect,
  read, write; 0.1 to 120, default 10), TLS for every target (`verify_tls`, default true; `ca_file` trusts that CA
  instead, e.g. a shop's own proxy in front of its ERP, or a test relay; `client_cert` + `client_key` (+ the secret
  `client_key_password` for an encrypted key): a client certificate for a server that asks for one, mutual TLS),
  redirects never followed (reported: set base_url to where it points), a User-Agent, and an optional httpx `auth`
  (an adapter that signs each request: the REST adapter's HMAC).
- Transport failures (refused, no answer within the timeout, a connection dropped before the answer) as `Retryable`,
  worded the same for every target and logged as `sync.http.failed`; except a server refusing our client certificate
  in the TLS handshake (a TLS alert: none sent, another CA's, expired), which is `Rejected` with what to set, since
  retrying cannot fix it.
- Secret scrubbing: `scrub(text, secrets)`, the one function that takes an adapter's secrets out of any text that
  may be logged or shown (an ERP echoing the key in its error, httpx's exception text).
- Status classification: `classify(status, extra)` says what an answer means (`Verdict`). Retryable by default:
  `RETRYABLE_STATUSES` (408, 425, 429) and every 5xx (500, 502, 503, 504 above all: an ERP restarting, or the proxy
  in front of it); an adapter adds only its own codes (`HttpAdapter.extra_retryable`: ERPNext 423 Locked, Odoo 409
  for a concurrent update). 401/403 are the credentials; another 3xx is a redirect; another 4xx refuses the data.
- `Retry-After`: read from a retryable answer (delta-seconds or an HTTP date, `retry_after_seconds`) and carried on
  the `Retryable` as `retry_after` (seconds), which the outbox engine waits out before the next attempt.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar

import httpx
import structlog

from appliance.settings import sync_secret_env
from sync.adapters.base import DeliveryError, Rejected, Retryable

log = structlog.get_logger("sync.http")

DEFAULT_TIMEOUT_SECONDS = 10.0
MIN_TIMEOUT_SECONDS = 0.1
MAX_TIMEOUT_SECONDS = 120.0
# Retryable whatever the target (with every 5xx): 408 Request Timeout, 425 Too Early, 429 Too Many Requests.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})
MIN_SECRET_CHARS = 4  # shorter "secrets" are not scrubbed: replacing them would garble every message
MAX_RETRY_AFTER_SECONDS = 86_400.0
# TLS alerts a server sends when it will not take our client certificate (OpenSSL's names, as in the error text):
# none (TLS 1.3 "certificate required"), one from a CA it does not trust, expired, revoked, or otherwise refused.
CERTIFICATE_ALERTS = (
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_UNKNOWN_CA",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNSUPPORTED_CERTIFICATE",
    "ALERT_ACCESS_DENIED",
)


class Verdict(StrEnum):
    """What an HTTP status means for a delivery."""

    OK = "ok"  # 2xx
    RETRY = "retry"  # try again later: Retryable
    CREDENTIALS = "credentials"  # 401/403: the key or its rights; a person must fix it: Rejected
    REDIRECT = "redirect"  # 3xx: base_url points at the wrong place: Rejected
    REFUSED = "refused"  # any other 4xx: the target refused this request for good: Rejected


def classify(status: int, extra_retryable: frozenset[int] = frozenset()) -> Verdict:
    """The one classification table (`extra_retryable`: a target's own retryable codes on top of the default)."""
    if 200 <= status < 300:
        return Verdict.OK
    if status in CREDENTIAL_STATUSES:
        return Verdict.CREDENTIALS
    if status >= 500 or status in RETRYABLE_STATUSES or status in extra_retryable:
        return Verdict.RETRY
    if 300 <= status < 400:
        return Verdict.REDIRECT
    return Verdict.REFUSED


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` header in seconds from now: delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00
    GMT"; a date already past is 0). None when absent or unreadable; at most a day."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(int(text)), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of at least MIN_SECRET_CHARS characters) replaced by ***, the longest first (so
    "key:secret" goes whole before "key" and "secret" are looked for)."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# -- settings every HTTP target shares ---------------------------------------------------------------------------
def base_url_setting(name: str, config: Mapping[str, Any]) -> str:
    """`base_url` without a trailing slash; ValueError unless it is an http(s) URL."""
    base_url = str(config.get("base_url") or "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"sync target {name}: base_url must start with http:// or https://, got {base_url!r}")
    return base_url


def timeout_setting(name: str, config: Mapping[str, Any], default: float = DEFAULT_TIMEOUT_SECONDS) -> float:
    """`timeout_seconds`: a number from 0.1 to 120."""
    value = config.get("timeout_seconds", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS
    ):
        raise ValueError(
            f"sync target {name}: timeout_seconds must be a number from {MIN_TIMEOUT_SECONDS:g} to "
            f"{MAX_TIMEOUT_SECONDS:g}, got {value!r}"
        )
    return float(value)


def tls_verify(name: str, config: Mapping[str, Any]) -> bool | ssl.SSLContext:
    """httpx's `verify=` for a target: `verify_tls` (default true; false only for a test server with a self-signed
    certificate), or a context trusting `ca_file` when given; with `client_cert` (and `client_key`, unless the key is
    in the same PEM file) a context that also presents that certificate (mutual TLS)."""
    verify_tls = config.get("verify_tls", True)
    if not isinstance(verify_tls, bool):
        raise ValueError(f"sync target {name}: verify_tls must be true or false, got {verify_tls!r}")
    verify: bool | ssl.SSLContext = verify_tls
    if config.get("ca_file"):
        try:
            verify = ssl.create_default_context(cafile=str(config["ca_file"]))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"sync target {name}: cannot use ca_file {config['ca_file']!r}: {exc}") from None
    if config.get("client_cert") or config.get("client_key"):
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        load_client_certificate(name, config, context)
        verify = context
    return verify


def load_client_certificate(name: str, config: Mapping[str, Any], context: ssl.SSLContext) -> None:
    """Put `client_cert`/`client_key` into `context`; ValueError naming the file and what is wrong. An encrypted
    key without `client_key_password` is refused here (OpenSSL would otherwise ask on the terminal)."""
    cert, key = config.get("client_cert"), config.get("client_key")
    if not cert:
        raise ValueError(f"sync target {name}: client_key is set but client_cert is not (both name PEM files)")
    for setting, value in (("client_cert", cert), ("client_key", key)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"sync target {name}: {setting} must be the path of a PEM file, got {value!r}")
    password = config.get("client_key_password")
    if password is not None and not isinstance(password, str):
        raise ValueError(f"sync target {name}: client_key_password must be text")

    def ask() -> bytes:
        if not password:
            raise ValueError(
                f"sync target {name}: the client key {key or cert!r} is encrypted: set client_key_password"
                f" (a secret: in the settings file of mode 0600, or ${sync_secret_env(name, 'client_key_password')})"
            )
        return password.encode()

    try:
        context.load_cert_chain(str(cert), str(key) if key else None, password=ask)
    except ValueError:
        raise
    except FileNotFoundError as exc:
        raise ValueError(f"sync target {name}: cannot read {exc.filename!r} (client_cert/client_key)") from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        hint = {
            "KEY_VALUES_MISMATCH": "the key does not belong to the certificate",
            "BAD_DECRYPT": "client_key_password does not open the key",
        }.get(str(exc.reason), "not a PEM certificate and key")
        if password and exc.reason not in ("KEY_VALUES_MISMATCH",):
            hint = "client_key_password does not open the key, or the files are not PEM"
        raise ValueError(
            f"sync target {name}: cannot use client_cert {cert!r} / client_key {key!r}: {hint} ({reason})"
        ) from None
    except OSError as exc:
        raise ValueError(f"sync target {name}: cannot read client_cert/client_key: {exc}") from None


class HttpAdapter:
    """The HTTP side of one sync target: its client, its requests, and what their failures mean. An adapter (or the
    relay client) subclasses it, names the other side (`peer`), and adds its own retryable codes, if any."""

    peer: ClassVar[str] = "the ERP"  # how messages name the other side
    extra_retryable: ClassVar[frozenset[int]] = frozenset()  # this kind's own retryable codes, beyond the default
    user_agent: ClassVar[str] = "tablebox-sync"

    def __init__(
        self,
        name: str,
        config: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        auth: httpx.Auth | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url_setting(name, config)
        self.timeout = timeout_setting(name, config)
        # The client key's password is every target's secret (it unlocks the key a client certificate proves with).
        password = config.get("client_key_password")
        self.secrets: tuple[str, ...] = tuple(s for s in (*secrets, password if isinstance(password, str) else "") if s)
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": self.user_agent, **(headers or {})},
            timeout=httpx.Timeout(self.timeout),
            verify=tls_verify(name, config),
            follow_redirects=False,
            auth=auth,
        )

    def close(self) -> None:
        self.http.close()

    @property
    def where(self) -> str:
        """The other side, for messages: "ERPNext at https://erp.example.com"."""
        return f"{self.peer} at {self.base_url}"

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def classify(self, status: int) -> Verdict:
        return classify(status, self.extra_retryable)

    # -- requests ----------------------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request, whatever its answer; no answer at all is Retryable."""
        request = self.http.build_request(
            method,
            path,
            params=dict(params) if params else None,
            content=content,
            headers=headers,
            timeout=httpx.Timeout(timeout) if timeout else httpx.USE_CLIENT_DEFAULT,
        )
        return self.send_request(request)

    def send_request(self, request: httpx.Request) -> httpx.Response:
        """Send a built request (the relay client signs it first); no answer at all is Retryable."""
        started = time.perf_counter()
        try:
            response = self.http.send(request)
        except httpx.HTTPError as exc:
            raise self._no_answer(request, exc) from None
        log.debug(
            "sync.http",
            target=self.name,
            method=request.method,
            url=str(request.url.copy_with(query=None)),
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    # -- what went wrong ---------------------------------------------------------------------------------------
    def _no_answer(self, request: httpx.Request, exc: httpx.HTTPError) -> DeliveryError:
        """What a request that got no HTTP answer means: Retryable, except the server refusing our client
        certificate in the TLS handshake (a TLS alert), which only a person can fix."""
        alert = next((name for name in CERTIFICATE_ALERTS if name in str(exc).upper()), None)
        if alert is not None:
            return self.rejected(
                f"{self.name}: {self.where} refused our client certificate (TLS alert:"
                f" {alert.removeprefix('ALERT_').replace('_', ' ').lower()}):"
                f" {'set client_cert and client_key' if alert == 'ALERT_CERTIFICATE_REQUIRED' else 'check client_cert'}"
                f" in [sync.{self.name}]: a certificate the ERP's client CA signed, not expired"
            )
        if isinstance(exc, httpx.TimeoutException):
            waited = (request.extensions.get("timeout") or {}).get("read") or self.timeout
            return self.unreachable(f"{self.where} did not answer within {waited:g} s ({type(exc).__name__})")
        if isinstance(exc, httpx.ConnectError):
            return self.unreachable(f"cannot reach {self.where}: {exc or 'connection refused'}")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return self.unreachable(
                f"the connection to {self.where} broke before an answer ({type(exc).__name__});"
                " it may have been processed"
            )
        return self.unreachable(f"network error talking to {self.where}: {type(exc).__name__}")

    def unreachable(self, message: str) -> Retryable:
        """No answer: the network, the target down or too slow."""
        text = self.scrub(f"{self.name}: {message}")
        log.info("sync.http.failed", target=self.name, url=self.base_url, error=text)
        return Retryable(text)

    def retryable(self, message: str, response: httpx.Response | None = None) -> Retryable:
        """Try again later; an answer's status and Retry-After go with it."""
        if response is None:
            return Retryable(self.scrub(message))
        return Retryable(
            self.scrub(message),
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )

    def rejected(self, message: str, status: int | None = None) -> Rejected:
        return Rejected(self.scrub(message), status=status)

    def raise_for_status(self, response: httpx.Response, said: str = "") -> None:
        """Nothing for a 2xx; otherwise the error the answer means, with `said` (the target's own words) in it."""
        status = response.status_code
        verdict = self.classify(status)
        if verdict is Verdict.OK:
            return
        where = f"{response.request.method} {response.request.url.path}"
        detail = f" ({said})" if said else ""
        if verdict is Verdict.CREDENTIALS:
            raise self.credentials_refused(response, said)
        if verdict is Verdict.RETRY:
            raise self.retryable(f"{self.name}: HTTP {status} from {self.peer} for {where}{detail}", response)
        if verdict is Verdict.REDIRECT:
            raise self.rejected(
                f"{self.name}: {self.peer} redirected {where} to {response.headers.get('location', '?')}:"
                " set base_url to where it points",
                status,
            )
        raise self.rejected(f"{self.name}: {self.peer} refused {where}: HTTP {status}{detail}", status)

    def credentials_refused(self, response: httpx.Response, said: str) -> Exception:
        """A 401/403: what to check (an adapter words it for its own credentials)."""
        status = response.status_code
        return self.rejected(
            f"{self.name}: {self.peer} refused our credentials (HTTP {status}"
            f"{': ' + said if said else ''}): check the credentials of [sync.{self.name}]",
            status,
        )
