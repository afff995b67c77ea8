"""ERP adapters: one small interface (sync.adapters.base.Adapter), one module per ERP (and one for the public relay,
which takes the box's order events the same way)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from sync.adapters.base import Adapter

KINDS = {
    "rest": "sync.adapters.rest",
    "erpnext": "sync.adapters.erpnext",
    "odoo": "sync.adapters.odoo",
    "relay": "sync.adapters.relay",
}


def adapter_class(kind: str) -> type[Adapter]:
    """The adapter class of a kind (its module's `ADAPTER`), for what it declares (`capabilities`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    cls: type[Adapter] = importlib.import_module(KINDS[kind]).ADAPTER
    return cls


def make_adapter(name: str, config: Mapping[str, Any]) -> Adapter:
    """The adapter for one [sync.NAME] target: its module's `create(name, config)`."""
    kind = config.get("kind")
    if kind not in KINDS:
        raise ValueError(f"sync target {name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return importlib.import_module(KINDS[kind]).create(name, config)  # type: ignore[no-any-return]
