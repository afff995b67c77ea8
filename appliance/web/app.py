"""create_app(settings): the litestar app with the store, the live-events hub and the limits on app.state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from appliance import __version__
from appliance.contract.diner import OrderIn, ServiceRequestIn
from appliance.db.orders import MenuCache
from appliance.diskspace import MB, SpaceGuard
from appliance.httpapi import ExactJsonRenderPlugin
from appliance.ratelimit import RateLimiter
from appliance.sdnotify import Notifier
from appliance.settings import BoxSettings
from appliance.store import Store
from appliance.web.diner import DinerController, OldStickerCallIn
from appliance.web.errors import EXCEPTION_HANDLERS
from appliance.web.events import EventHub
from appliance.web.health import healthz
from appliance.web.menu_render import MenuRenderCache
from appliance.web.pages import diner_page, dish_photo, static_router
from appliance.web.schemas import HealthOut
from appliance.web.watchdog import watchdog_pings


def create_app(settings: BoxSettings, store: Store | None = None, notifier: Notifier | None = None) -> Litestar:
    """The web app. The store opens in the lifespan (or is given, already open, by tests and the
    command line) and is closed when the app stops: queued writes finish first. Under systemd
    (`$NOTIFY_SOCKET`, or a given `notifier`) it says READY=1 once the store and its writer are up, pings
    the watchdog while the writer answers, and says STOPPING=1 when it stops."""
    notify = notifier if notifier is not None else Notifier.from_environ()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = store is None
        opened = Store.open(settings) if owned else store
        assert opened is not None
        state = app.state
        state.store = opened
        state.read_cache = MenuCache()
        state.rendered = MenuRenderCache(opened.store_id)
        state.hub = EventHub(opened.read, settings.events_poll_seconds)
        state.hub.start()
        state.read_cache.get(opened.read)
        # Everything loaded so far lives as long as the process: keep it out of the garbage collector's
        # full passes, which otherwise stall every request for tens of milliseconds under load.
        gc.collect()
        gc.freeze()
        notify.ready(status="taking orders")
        pings = asyncio.create_task(watchdog_pings(notify, opened.writer), name="watchdog")
        try:
            yield
        finally:
            notify.stopping()
            pings.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pings
            await state.hub.stop()
            if owned:
                opened.close()

    return Litestar(
        route_handlers=[DinerController, healthz, diner_page, dish_photo, static_router],
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "table_limiter": RateLimiter(settings.rate_limit_table_per_minute),
                "address_limiter": RateLimiter(settings.rate_limit_address_per_minute),
                "space": SpaceGuard(settings.data_dir, settings.min_free_mb * MB),
            }
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tablebox diner API",
            version=__version__,
            description="What a diner's phone (or the relay) asks the restaurant's box. The table token in the "
            "path is the only credential. Money is integers in the currency's minor unit.",
            path="/schema",
            render_plugins=[
                ExactJsonRenderPlugin(
                    path=["/", "/openapi.json"],
                    request_bodies={
                        "submitOrder": OrderIn,
                        "requestService": ServiceRequestIn,
                        "oldStickerCall": OldStickerCallIn,
                    },
                    shapes=[*DinerController.SHAPES, HealthOut],
                )
            ],
        ),
        logging_config=None,
        debug=False,
    )
