"""Signed requests (the REST adapter's auth = "hmac"): TABLEBOX-HMAC-SHA256, the scheme an in-house ERP verifies.

Every request carries five headers: X-Tablebox-Key (the key id), X-Tablebox-Timestamp (Unix seconds),
X-Tablebox-Nonce (32 random hex digits), X-Tablebox-Content-SHA256 (hex SHA-256 of the body) and X-Tablebox-Signature:
the lower-case hex HMAC-SHA256, under the shared secret, of `hmac_string_to_sign`'s seven lines. The ERP recomputes
it, refuses a timestamp outside its window (300 s is usual) and a nonce it has seen within it (README: "Signed
requests", with a worked example).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator

import httpx

HMAC_SCHEME = "TABLEBOX-HMAC-SHA256"
HMAC_KEY_HEADER = "X-Tablebox-Key"
HMAC_TIMESTAMP_HEADER = "X-Tablebox-Timestamp"
HMAC_NONCE_HEADER = "X-Tablebox-Nonce"
HMAC_CONTENT_HEADER = "X-Tablebox-Content-SHA256"
HMAC_SIGNATURE_HEADER = "X-Tablebox-Signature"
DEFAULT_HMAC_WINDOW_SECONDS = 300


def hmac_string_to_sign(key_id: str, timestamp: str, nonce: str, method: str, target: str, body: bytes) -> bytes:
    """The bytes an HMAC-signed request's signature covers: seven lines joined by "\\n" (no final newline), UTF-8:
    the scheme name, the key id, the Unix timestamp, the nonce, the method in capitals, the request target exactly as
    on the request line (path and query, percent-encoded as sent) and the hex SHA-256 of the body (of nothing for a
    request without one)."""
    lines = (HMAC_SCHEME, key_id, timestamp, nonce, method.upper(), target, hashlib.sha256(body).hexdigest())
    return "\n".join(lines).encode()


def hmac_headers(
    key_id: str, secret: bytes, method: str, target: str, body: bytes, *, timestamp: int, nonce: str
) -> dict[str, str]:
    """The five headers that sign one request (hex HMAC-SHA256 of hmac_string_to_sign under the shared secret)."""
    signed = hmac_string_to_sign(key_id, str(timestamp), nonce, method, target, body)
    return {
        HMAC_KEY_HEADER: key_id,
        HMAC_TIMESTAMP_HEADER: str(timestamp),
        HMAC_NONCE_HEADER: nonce,
        HMAC_CONTENT_HEADER: hashlib.sha256(body).hexdigest(),
        HMAC_SIGNATURE_HEADER: hmac.new(secret, signed, hashlib.sha256).hexdigest(),
    }


class HmacAuth(httpx.Auth):
    """Signs each request as it leaves (a retry is signed afresh: new timestamp, new nonce)."""

    requires_request_body = True

    def __init__(self, key_id: str, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self.key_id = key_id
        self.secret = secret
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            hmac_headers(
                self.key_id,
                self.secret,
                request.method,
                request.url.raw_path.decode("ascii"),
                request.content,
                timestamp=int(self.clock()),
                nonce=secrets.token_hex(16),
            )
        )
        yield request


def secret_bytes(name: str, value: str, encoding: str) -> bytes:
    if encoding == "hex":
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"sync target {name}: hmac_secret is not hex (hmac_secret_encoding = 'hex')") from None
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"sync target {name}: hmac_secret is not base64 (hmac_secret_encoding = 'base64')"
            ) from None
    return value.encode()
