"""Table tokens: store id, table id and version, signed with the store's secret (HMAC-SHA256, truncated, base32)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass

from appliance.domain.errors import DomainError

# store id (4 bytes) | table id (4) | version (2) | MAC (10) = 20 bytes = 32 base32 characters, no padding.
_PAYLOAD = struct.Struct(">4sIH")
MAC_BYTES = 10
TOKEN_BYTES = _PAYLOAD.size + MAC_BYTES
TOKEN_CHARS = TOKEN_BYTES * 8 // 5
STORE_ID_BYTES = 4


@dataclass(frozen=True)
class TableRef:
    store_id: str  # 8 hex digits
    table_id: int
    version: int


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"tablebox-table-token-v1|" + payload, hashlib.sha256).digest()[:MAC_BYTES]


def sign_table_token(secret: bytes, ref: TableRef) -> str:
    payload = _PAYLOAD.pack(bytes.fromhex(ref.store_id), ref.table_id, ref.version)
    return base64.b32encode(payload + _mac(secret, payload)).decode("ascii").lower()


def read_table_token(secret: bytes, store_id: str, token: str) -> TableRef:
    """Verify a token from a sticker. 403-class errors: `forged_token`, `other_store`."""
    raw = _decode(token)
    if raw is None:
        raise DomainError("forged_token", "this table code is not valid")
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    token_store, table_id, version = _PAYLOAD.unpack(payload)
    if token_store.hex() != store_id:
        raise DomainError("other_store", "this table code belongs to another restaurant")
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise DomainError("forged_token", "this table code is not valid")
    return TableRef(store_id, table_id, version)


def _decode(token: str) -> bytes | None:
    if len(token) != TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.b32decode(token.upper())
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == TOKEN_BYTES else None


def peek_table_token(token: str) -> TableRef | None:
    """What a token says (store id, table id, version) without checking its MAC: for the relay, which holds no
    store secret, to answer an old sticker or another store's code early. Never a reason to trust a token: the
    box verifies every order's token with the secret. None when it is not shaped like a token."""
    raw = _decode(token)
    if raw is None:
        return None
    token_store, table_id, version = _PAYLOAD.unpack(raw[: _PAYLOAD.size])
    return TableRef(token_store.hex(), table_id, version)
