"""schemathesis hooks for the `--checks all` runs over the box and the relay (loaded through SCHEMATHESIS_HOOKS by
`tests/schemathesis_cli.py`): every order with a well-formed client key gets a key of its own, so a key generated
twice (hypothesis likes "00000000") is not an `idempotency_key_reused` refusal of a new order, which no description
can express. A key that breaks the pattern is left as it is: that case is about the refusal."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

CLIENT_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("client_key"), str) and CLIENT_KEY.fullmatch(body["client_key"]):
        body["client_key"] = uuid.uuid4().hex
