"""The diner's menu in one language (`appliance.contract.menu.render_menu`), rendered once per menu version and
cached as JSON bytes with an ETag."""

from __future__ import annotations

import hashlib

import msgspec

from appliance.contract.menu import render_menu
from appliance.db.orders import Snapshot


class MenuRenderCache:
    """(version, language, which windowed dishes are closed now) -> (ETag, JSON bytes)."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id
        self._version = -1
        self._entries: dict[tuple[str, frozenset[int]], tuple[str, bytes]] = {}
        self.renders = 0

    def get(self, snap: Snapshot, lang: str, minute_of_day: int) -> tuple[str, bytes]:
        if snap.version != self._version:
            self._entries.clear()
            self._version = snap.version
        closed = snap.menu.unavailable_at(minute_of_day)
        key = (lang, closed)
        entry = self._entries.get(key)
        if entry is None:
            body = msgspec.json.encode(render_menu(snap.menu, snap.settings, lang, minute_of_day, version=snap.version))
            digest = hashlib.sha256(body).hexdigest()[:16]
            entry = (f'"{self.store_id}-{snap.version}-{lang}-{digest}"', body)
            if len(self._entries) > 64:
                self._entries.clear()
            self._entries[key] = entry
            self.renders += 1
        return entry
