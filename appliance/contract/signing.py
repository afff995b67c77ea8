"""Signed box requests: HMAC-SHA256 with the store's relay secret over five lines (method, path with query,
timestamp, nonce, SHA-256 of the body), the layout WeChat Pay and the relay reference use. The relay refuses a
bad signature, a timestamp more than 5 minutes off, and a nonce it has seen. The box signs (`sync/adapters/relay.py`),
the relay verifies (`sync/relay/app.py`, `sync/relay/images.py`)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from appliance.domain.errors import TableboxError  # the root (appliance.errors) lives in the pure layer

STORE_HEADER = "X-Tablebox-Store"
TIMESTAMP_HEADER = "X-Tablebox-Timestamp"
NONCE_HEADER = "X-Tablebox-Nonce"
SIGNATURE_HEADER = "X-Tablebox-Signature"
MAX_SKEW_SECONDS = 300
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# What each header may hold, checked before any of it is used (as a number, a database key or in a comparison): a
# store id as the relay makes them, a Unix time in ASCII digits, a SHA-256 HMAC in lower-case hex.
STORE = re.compile(r"[A-Za-z0-9_-]{8,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")


def canonical(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), path_and_query, timestamp, nonce, hashlib.sha256(body).hexdigest()]).encode()


def signature(secret: bytes, method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret, canonical(method, path_and_query, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign(
    store_id: str,
    secret: bytes,
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of a signed box request. `path_and_query` exactly as sent ("/v1/box/inbox?after=5&wait=25")."""
    timestamp = str(int(now if now is not None else time.time()))
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        STORE_HEADER: store_id,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, method, path_and_query, timestamp, nonce, body),
    }


@dataclass(frozen=True)
class Refusal(TableboxError):
    code: str  # unknown_store / bad_signature / stale_timestamp / replayed_nonce / missing_signature
    message: str


def verify(
    headers: Mapping[str, str],
    method: str,
    path_and_query: str,
    body: bytes,
    *,
    secret_of: Callable[[str], bytes | None],
    nonce_is_new: Callable[[str, str, int], bool],
    now: float | None = None,
) -> str:
    """Check a box request; return its store id, or raise Refusal. `nonce_is_new(store, nonce, timestamp)`
    records the nonce and says whether it was new (the caller keeps nonces for at least 2 x MAX_SKEW)."""
    lower = {k.lower(): v for k, v in headers.items()}
    store = lower.get(STORE_HEADER.lower(), "")
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    nonce = lower.get(NONCE_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not (store and timestamp and nonce and given):
        raise Refusal("missing_signature", "a box request must carry the X-Tablebox-* signature headers")
    # Every header's form first, before the store is looked up or anything is turned into a number: a header that
    # could not have come from a box is a plain refusal (never a failed lookup, an int() of 5,000 digits or a
    # comparison of non-ASCII text).
    if not STORE.fullmatch(store):
        raise Refusal("unknown_store", "the store id must be 8-64 characters of A-Z a-z 0-9 _ -")
    if not TIMESTAMP.fullmatch(timestamp):
        raise Refusal("stale_timestamp", "the timestamp must be Unix seconds in ASCII digits")
    if not NONCE.fullmatch(nonce):
        raise Refusal("bad_signature", "the nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
    if not SIGNATURE.fullmatch(given):
        raise Refusal("bad_signature", "the signature must be 64 lower-case hex digits (HMAC-SHA256)")
    secret = secret_of(store)
    if secret is None:
        raise Refusal("unknown_store", "no store is enrolled with that id")
    skew = abs((now if now is not None else time.time()) - int(timestamp))
    if skew > MAX_SKEW_SECONDS:
        raise Refusal(
            "stale_timestamp",
            f"the box's clock is {int(skew)} s off (more than {MAX_SKEW_SECONDS} s): check its time (NTP)",
        )
    expected = signature(secret, method, path_and_query, timestamp, nonce, body)
    if not hmac.compare_digest(expected, given):
        raise Refusal("bad_signature", "the signature does not match (wrong store secret?)")
    if not nonce_is_new(store, nonce, int(timestamp)):
        raise Refusal("replayed_nonce", "this request was already received (a replay)")
    return store
