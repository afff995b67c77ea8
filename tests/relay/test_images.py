"""Dish photos through the relay, on SQLite and on PostgreSQL: the storage keeps them by name, a box pushes them with
signed requests (checked against their name: a photo is its content), phones load them with a year's cache, and
the box's link sends exactly the photos the relay lacks before each menu push. If these failed, a phone ordering
through the relay would see broken pictures, or one store could replace another's photos."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from PIL import Image

from appliance.contract import relay as contract
from appliance.contract.signing import sign
from appliance.db.connection import write_transaction
from appliance.db.menu import set_image, set_sold_out
from appliance.images import images_dir, prepare_image
from sync.adapters.base import Retryable
from sync.adapters.relay import RelayClient
from sync.config import Target
from sync.relay import images as relay_images
from sync.relay_link import RelayLink, photo_names
from tests.appliance.web.conftest import item_id
from tests.relay.conftest import wait_until

CACHE_FOREVER = "public, max-age=31536000, immutable"


def photo(folder: Path, n: int, size: tuple[int, int] = (900, 700)) -> tuple[str, bytes]:
    """A real dish photo as the box stores it (prepare_image of a generated picture): (name, JPEG bytes)."""
    tint = Image.new("RGB", size, ((n * 70) % 256, (n * 130 + 60) % 256, (n * 30 + 120) % 256))
    grain = Image.merge("RGB", [Image.effect_noise(size, 25) for _ in range(3)])
    picture = Image.blend(tint, grain, 0.3)
    source = folder / f"camera-{n}.png"
    picture.save(source)
    name = prepare_image(source, folder)
    return name, (images_dir(folder) / name).read_bytes()


def put_photo(
    box: Any, name: str, body: bytes, *, secret: bytes | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    path = f"/v1/box/images/{name}"
    signed = (
        headers if headers is not None else sign(box.store_id, secret or box.secret, "PUT", path, body, now=box.clock())
    )
    return box.http.put(path, content=body, headers={**signed, "Content-Type": "image/jpeg"})


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# -- storage ------------------------------------------------------------------------------------------------------
def test_the_storage_keeps_photos_by_name_and_says_which_are_missing(storage, tmp_path):
    (a, body_a), (b, body_b) = photo(tmp_path, 1), photo(tmp_path, 2)
    c = "0123456789abcdef.jpg"
    assert storage.missing_images([a, b]) == [a, b]
    assert storage.missing_images([]) == []
    assert storage.put_image(a, body_a, 1000.0) is True
    assert storage.put_image(a, body_b, 2000.0) is False  # already there: left as it was
    assert storage.missing_images([c, b, a]) == [c, b]  # the order asked, the stored one left out
    got = storage.image(a)
    assert type(got) is bytes and got == body_a and hashlib.sha256(got).hexdigest()[:16] + ".jpg" == a
    assert storage.image(b) is None
    assert storage.put_image(b, body_b, 1000.0) is True
    assert storage.missing_images([a, b]) == []
    # the purge forgets old messages and nonces, never photos
    assert storage.purge(time.time() + 10 * 365 * 86400, 0)
    assert storage.image(a) == body_a and storage.image(b) == body_b


# -- the relay's routes -------------------------------------------------------------------------------------------
def test_a_signed_photo_upload_is_served_to_phones_with_a_years_cache(relay, tmp_path):
    box = relay.enroll()
    (a, body_a), (b, _) = photo(tmp_path, 1), photo(tmp_path, 2)
    asked = box.request("POST", "/v1/box/images/missing", {"names": [a, b, a]})
    assert asked.status_code == 200 and asked.json() == {"missing": [a, b]}

    first = put_photo(box, a, body_a)
    assert first.status_code == 200 and first.json() == {"stored": True}
    again = put_photo(box, a, body_a)
    assert again.status_code == 200 and again.json() == {"stored": False}
    assert box.request("POST", "/v1/box/images/missing", {"names": [b, a]}).json() == {"missing": [b]}
    assert relay.storage.image(a) == body_a

    served = httpx.get(f"{relay.url}/images/{a}", timeout=10)
    assert served.status_code == 200 and served.content == body_a
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == CACHE_FOREVER
    with Image.open(io.BytesIO(served.content)) as shown:
        assert shown.format == "JPEG" and shown.size == (640, 498)


def test_the_boxs_client_sends_photos_signed_as_raw_bytes_and_asks_500_names_at_a_time(relay, tmp_path):
    box = relay.enroll()
    (a, body_a), (b, body_b) = photo(tmp_path, 1), photo(tmp_path, 2)
    client = RelayClient(
        "relay", {"base_url": relay.url, "store_id": box.store_id, "api_secret": box.secret.hex(), "timeout_seconds": 5}
    )
    try:
        assert client.put_image(a, body_a) is True
        assert client.put_image(a, body_a) is False
        many = [f"{n:016x}.jpg" for n in range(1200)]
        assert client.missing_images([*many[:600], a, b, *many[600:]]) == [*many[:600], b, *many[600:]]
        assert client.put_image(b, body_b) is True
        assert relay.storage.image(b) == body_b
    finally:
        client.close()
    # what the box assumes of the relay is what the relay does
    assert (
        (contract.MAX_IMAGE_NAMES, contract.MAX_IMAGE_BYTES)
        == (relay_images.MAX_NAMES, relay_images.MAX_IMAGE_BYTES)
        == (500, 1_048_576)
    )


def test_a_photo_not_named_by_its_content_or_not_a_jpeg_is_refused_and_not_stored(relay, tmp_path):
    box = relay.enroll()
    (a, body_a), (b, body_b) = photo(tmp_path, 1), photo(tmp_path, 2)
    assert error(put_photo(box, a, body_b)) == (422, "invalid_image")  # another photo's bytes
    assert error(put_photo(box, a, body_a[:-10])) == (422, "invalid_image")  # a cut-off upload
    assert error(put_photo(box, a.upper(), body_a)) == (422, "invalid_image")  # not a photo name
    assert error(put_photo(box, a[:-4] + ".png", body_a)) == (422, "invalid_image")
    png = tmp_path / "dish.png"
    Image.new("RGB", (40, 40), (10, 200, 30)).save(png)
    png_bytes = png.read_bytes()
    refused = put_photo(box, relay_images.content_name(png_bytes), png_bytes)  # named right, but not a JPEG
    assert error(refused) == (422, "invalid_image") and refused.json()["error"]["details"] == {"field": "body"}
    assert relay.storage.missing_images([a, b, relay_images.content_name(png_bytes)]) == [
        a,
        b,
        relay_images.content_name(png_bytes),
    ]

    bad_names = box.request("POST", "/v1/box/images/missing", {"names": [a, "../store.db"]})
    assert error(bad_names) == (422, "invalid_body") and bad_names.json()["error"]["details"]["field"] == "names[1]"
    too_many = box.request("POST", "/v1/box/images/missing", {"names": [a] * 501})
    assert error(too_many) == (422, "invalid_body")
    assert error(box.request("POST", "/v1/box/images/missing", {"names": "a.jpg"})) == (422, "invalid_body")
    assert box.request("POST", "/v1/box/images/missing", {"names": [a] * 500}).json() == {"missing": [a]}


def test_a_photo_over_1_mib_is_refused_with_413_under_the_routers_larger_limit(relay):
    box = relay.enroll()
    assert relay.settings.max_box_body_bytes == 4_194_304
    for size in (1_048_577, 3_000_000):  # both under the box router's 4 MiB
        body = b"\xff\xd8\xff" + bytes(size - 3)
        name = relay_images.content_name(body)
        refused = put_photo(box, name, body)
        assert error(refused) == (413, "body_too_large"), size
        assert relay.storage.image(name) is None
    exactly = b"\xff\xd8\xff" + bytes(1_048_576 - 3)
    taken = put_photo(box, relay_images.content_name(exactly), exactly)
    assert taken.status_code == 200 and taken.json() == {"stored": True}
    assert len(relay.storage.image(relay_images.content_name(exactly))) == 1_048_576


def test_an_unsigned_or_wrongly_signed_upload_is_refused(relay, tmp_path):
    box = relay.enroll()
    a, body_a = photo(tmp_path, 1)
    assert error(put_photo(box, a, body_a, headers={})) == (401, "missing_signature")
    assert error(put_photo(box, a, body_a, secret=bytes(32))) == (401, "bad_signature")
    signed_for_other_bytes = sign(box.store_id, box.secret, "PUT", f"/v1/box/images/{a}", body_a[:-1], now=box.clock())
    assert error(put_photo(box, a, body_a, headers=signed_for_other_bytes)) == (401, "bad_signature")
    unsigned = box.http.post("/v1/box/images/missing", json={"names": [a]})
    assert error(unsigned) == (401, "missing_signature")
    assert relay.storage.image(a) is None


def test_an_unknown_or_malformed_photo_name_is_404(relay, tmp_path):
    box = relay.enroll()
    a, body_a = photo(tmp_path, 1)
    assert put_photo(box, a, body_a).status_code == 200
    for path in (
        f"/images/{'0' * 16}.jpg",
        f"/images/{a.upper()}",
        f"/images/{a[:-4]}.png",
        "/images/..%2Frelay.db",
        f"/images/{a}x",
    ):
        answer = httpx.get(relay.url + path, timeout=10)
        assert error(answer) == (404, "not_found"), path
        assert "cache-control" not in answer.headers
    assert httpx.get(f"{relay.url}/images/{a}", timeout=10).content == body_a


def test_photos_are_rate_limited_by_address(make_relay, tmp_path):
    relay = make_relay(rate_limit_address_per_minute=3)
    box = relay.enroll()
    a, body_a = photo(tmp_path, 1)
    assert put_photo(box, a, body_a).status_code == 200
    answers = [httpx.get(f"{relay.url}/images/{a}", timeout=10) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited" and int(answers[3].headers["retry-after"]) >= 1


# -- the box's link -----------------------------------------------------------------------------------------------
class CountingClient(RelayClient):
    """The real client to the real relay, recording the photo calls (and failing the first N uploads)."""

    def __init__(self, name: str, config: Any, *, fail_puts: int = 0, old_relay: bool = False) -> None:
        super().__init__(name, config)
        self.asked: list[list[str]] = []
        self.sent: list[str] = []
        self.fail_puts = fail_puts
        self.old_relay = old_relay

    def missing_images(self, names):
        self.asked.append(list(names))
        if self.old_relay:  # a relay from before the photo API: its router answers 404
            return self.call("POST", "/v1/box/images-not-here", {"names": list(names)})
        return super().missing_images(names)

    def put_image(self, name, body):
        if self.fail_puts:
            self.fail_puts -= 1
            raise Retryable("relay: the connection broke before an answer")
        self.sent.append(name)
        return super().put_image(name, body)


def start_link(settings: Any, relay: Any, **client_options: Any) -> tuple[RelayLink, threading.Event, Any]:
    box = relay.enroll()
    config = {
        "kind": "relay",
        "base_url": relay.url,
        "store_id": box.store_id,
        "api_secret": box.secret.hex(),
        "timeout_seconds": 5,
        "poll_wait_seconds": 0,
        "menu_check_seconds": 0.02,
    }
    clients: list[CountingClient] = []

    def factory(name: str, config: Any) -> CountingClient:
        clients.append(CountingClient(name, config, **client_options))
        return clients[-1]

    stop = threading.Event()
    link = RelayLink(settings, Target("relay", "relay", True, 5, 0, 0.05, config), stop, client_factory=factory)
    menu_client = clients[1]  # made second, after the inbox's
    assert link.menu_client is menu_client
    link.start()
    return link, stop, (box, menu_client)


def relay_menu_version(relay: Any, store_id: str) -> int | None:
    found = relay.storage.menu(store_id)
    return found[0] if found else None


def box_menu_version(db: Any) -> int:
    return db.execute("SELECT version FROM menu_meta").fetchone()[0]


def test_the_link_sends_exactly_the_photos_the_relay_lacks_and_a_missing_file_does_not_stop_the_menu(
    settings, db, relay
):
    data = settings.data_dir
    (on_relay, body_on_relay), (new, body_new), (gone, body_gone), (hidden, _) = (photo(data, n) for n in range(4))
    with write_transaction(db):
        set_image(db, "har_gow", on_relay)
        set_image(db, "xiaolongbao", new)
        set_image(db, "mapo_tofu", gone)
        set_image(db, "chef_special_duck", hidden)  # a hidden dish: not on the menu, so not sent
        set_image(db, "cola", new)  # two dishes, one photo
    (images_dir(data) / gone).unlink()  # the file is lost on the box
    assert relay.storage.put_image(on_relay, body_on_relay, time.time())

    with structlog.testing.capture_logs() as logs:
        link, stop, (box, client) = start_link(settings, relay)
        try:
            wait_until(
                lambda: (
                    relay_menu_version(relay, box.store_id) == box_menu_version(db)
                    and link.menu_pushed == box_menu_version(db)
                ),
                what="the menu on the relay",
            )
            assert client.sent == [new] and link.photos_sent == 1
            assert sorted(client.asked[0]) == sorted([on_relay, new, gone])
            assert all(asked == [gone] for asked in client.asked[1:])  # the known ones are not asked again
            assert relay.storage.image(new) == body_new and relay.storage.image(gone) is None
            assert relay.storage.missing_images([hidden]) == [hidden]
            # the menu went all the same, with the lost photo's dish in it
            menu_json = relay.storage.menu(box.store_id)[1]
            assert f"/images/{gone}" in menu_json and f"/images/{new}" in menu_json
            served = httpx.get(f"{relay.url}/images/{new}", timeout=10)
            assert served.status_code == 200 and served.content == body_new

            # the file comes back: the next menu push sends it, and nothing else
            (images_dir(data) / gone).write_bytes(body_gone)
            with write_transaction(db):
                set_sold_out(db, item_id(db, "har_gow"), True)
            wait_until(lambda: relay.storage.image(gone) is not None, what="the restored photo on the relay")
            wait_until(lambda: relay_menu_version(relay, box.store_id) == box_menu_version(db), what="the new menu")
            assert client.sent == [new, gone] and relay.storage.image(gone) == body_gone
            assert all(asked == [gone] for asked in client.asked[1:])
        finally:
            stop.set()
            link.join(5)
    missing = [e for e in logs if e["event"] == "relay.image_missing"]
    assert missing and {e["name"] for e in missing} == {gone}
    stored = [(e["name"], e["new"]) for e in logs if e["event"] == "relay.image_stored"]
    assert stored == [(new, True), (gone, True)]  # the relay's own count: each photo uploaded once


def test_a_failed_upload_holds_the_menu_push_and_both_go_on_the_next_pass(settings, db, relay):
    data = settings.data_dir
    name, body = photo(data, 5)
    with write_transaction(db):
        set_image(db, "har_gow", name)
    with structlog.testing.capture_logs() as logs:
        link, stop, (_, client) = start_link(settings, relay, fail_puts=1)
        try:
            wait_until(
                lambda: relay.storage.image(name) is not None and link.menu_pushed == box_menu_version(db),
                what="the photo and the menu on the relay",
            )
        finally:
            stop.set()
            link.join(5)
    assert client.sent == [name] and relay.storage.image(name) == body
    events = [
        e["event"] for e in logs if e["event"] in ("relay.menu_push_failed", "relay.image_pushed", "relay.menu_pushed")
    ]
    # the failed upload came first and no menu went before the photo was on the relay
    assert events[:3] == ["relay.menu_push_failed", "relay.image_pushed", "relay.menu_pushed"]
    failed = next(e for e in logs if e["event"] == "relay.menu_push_failed")
    assert "connection broke" in failed["error"]


def test_photo_names_come_from_the_menu_document():
    document = contract.MenuPush(
        version=1,
        store={},
        menus={
            "zh": {"categories": [{"items": [{"image": "/images/aaaaaaaaaaaaaaaa.jpg"}, {"image": None}]}]},
            "en": {
                "categories": [
                    {"items": [{"image": "/images/aaaaaaaaaaaaaaaa.jpg"}, {"image": "/images/bbbbbbbbbbbbbbbb.jpg"}]},
                    {"items": []},
                ]
            },
        },
    )
    assert photo_names(document) == ["aaaaaaaaaaaaaaaa.jpg", "bbbbbbbbbbbbbbbb.jpg"]


def link_until_the_menu_is_pushed(settings, db, relay, **options):
    """Run the box's relay link until the relay holds the box's current menu, then stop it."""
    link, stop, (box, client) = start_link(settings, relay, **options)
    try:
        wait_until(
            lambda: (
                link.menu_pushed == box_menu_version(db)
                and relay_menu_version(relay, box.store_id) == box_menu_version(db)
            ),
            what="the menu",
        )
    finally:
        stop.set()
        link.join(5)
    return box, client


@pytest.mark.parametrize("problem", ["too_large", "not_its_name"])
def test_a_damaged_photo_on_the_box_is_skipped_not_sent(problem, settings, db, relay):
    data = settings.data_dir
    name, body = photo(data, 6)
    damaged = body + bytes(1_048_576) if problem == "too_large" else body[:-100]
    (images_dir(data) / name).write_bytes(damaged)
    with write_transaction(db):
        set_image(db, "har_gow", name)
    with structlog.testing.capture_logs() as logs:
        _, client = link_until_the_menu_is_pushed(settings, db, relay)
    assert client.sent == [] and client.asked[0] == [name] and relay.storage.image(name) is None
    invalid = [e for e in logs if e["event"] == "relay.image_invalid"]
    assert invalid and invalid[0]["name"] == name and invalid[0]["bytes"] == len(damaged)


def test_a_relay_without_the_photo_api_still_gets_the_menu(settings, db, relay):
    name, _ = photo(settings.data_dir, 7)
    with write_transaction(db):
        set_image(db, "har_gow", name)
    with structlog.testing.capture_logs() as logs:
        _, client = link_until_the_menu_is_pushed(settings, db, relay, old_relay=True)
    assert client.asked and all(asked == [name] for asked in client.asked) and client.sent == []
    unsupported = [e for e in logs if e["event"] == "relay.images_unsupported"]
    assert unsupported and "HTTP 404" in unsupported[0]["error"]
    assert not [e for e in logs if e["event"] == "relay.menu_push_failed"]
