"""`tablebox sync check [TARGET]` (sync/check.py, appliance/cli/sync.py) and the relay adapter's check(), against the
real relay app on 127.0.0.1 and against small adapters of the test's own. If these failed, an integrator would see a
traceback (or nothing) instead of what is wrong with the ERP's set-up and what to do, a wrong relay secret would
only show as orders that never reach the phones, and the console would show a stale or no result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from appliance.cli import main
from appliance.db.connection import write_transaction
from appliance.db.sync_checks import (
    CheckOutcome,
    check_requested,
    claim_check_request,
    last_check,
    request_check,
)
from appliance.domain.errors import DomainError
from sync.adapters.base import Capability, Check, CheckState
from sync.adapters.relay import RelayAdapter
from sync.check import answer_check_request, check_target, render, run_checklist
from sync.config import Target
from sync.relay.app import create_relay_app
from sync.relay.settings import RelaySettings
from sync.relay.storage import open_storage
from tests.appliance.test_crash import free_port
from tests.appliance.web.conftest import LiveServer
from tests.sync.syncd import wait_until, write_settings

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


LOGGING_MODULES = ("sync.check", "sync.adapters.http", "sync.adapters.relay", "sync.relay.app", "sync.relay.images")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch):
    """The commands run in process configure logging onto pytest's captured stream, which closes after the test, and
    structlog caches a module's logger on its first use: each test gets fresh module loggers, and the defaults back."""
    import importlib

    import structlog as _structlog

    for name in LOGGING_MODULES:
        monkeypatch.setattr(importlib.import_module(name), "log", _structlog.get_logger(name))
    yield
    import logging

    import structlog

    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


class RelayUnderTest:
    def __init__(self, url: str, store_id: str, secret: str) -> None:
        self.url, self.store_id, self.secret = url, store_id, secret
        self.storage: Any = None

    def config(self, **changes: Any) -> dict[str, Any]:
        return {
            "kind": "relay",
            "base_url": self.url,
            "store_id": self.store_id,
            "api_secret": self.secret,
            "timeout_seconds": 5,
            **changes,
        }


@pytest.fixture
def relay(tmp_path) -> Iterator[RelayUnderTest]:
    """The real relay app (SQLite storage) served on 127.0.0.1, with one store enrolled."""
    storage = open_storage(f"sqlite:///{tmp_path / 'relay.db'}")
    settings = RelaySettings(
        rate_limit_address_per_minute=0,
        rate_limit_address_orders_per_minute=0,
        rate_limit_store_per_minute=0,
        rate_limit_token_per_minute=0,
        log_format="console",
    )
    try:
        with LiveServer(create_relay_app(settings, storage)) as server:
            enrolled = storage.enroll("小笼天下 Dumpling House")
            found = RelayUnderTest(server.url, enrolled.store_id, enrolled.secret)
            found.storage = storage
            yield found
    finally:
        storage.close()


def tablebox(capsys, settings, *args: str, config=None) -> tuple[int, str, str]:
    extra = ["--config", str(config)] if config else []
    code = main([*args[:1], "--data-dir", str(settings.data_dir), *extra, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def target(name: str, config: Mapping[str, Any]) -> Target:
    return Target(name, str(config["kind"]), True, 10, 0, 300.0, dict(config))


# -- the relay's checklist through the command line -----------------------------------------------------------------
def test_a_relay_set_up_right_passes_every_check_and_the_result_is_kept(capsys, settings, db, relay, tmp_path):
    config = write_settings(tmp_path / "t.toml", {"relay": relay.config()})
    code, out, err = tablebox(capsys, settings, "sync", "check", config=config)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"relay (relay) at {relay.url}"
    assert lines[1].startswith("  ✓ reachable: relay ") and lines[1].endswith(f" at {relay.url}")
    assert lines[2:4] == [
        f"  ✓ store enrolled: the relay knows store {relay.store_id}",
        "  ✓ signature accepted: a request signed with api_secret went through",
    ]
    assert lines[4].startswith("  relay: 3 ok (")
    kept = last_check(db, "relay")
    assert kept is not None and kept.outcome is CheckOutcome.OK and kept.ran_by == "cli"
    assert [(line.name, line.state) for line in kept.lines] == [
        ("reachable", CheckOutcome.OK),
        ("store enrolled", CheckOutcome.OK),
        ("signature accepted", CheckOutcome.OK),
    ]


def test_a_wrong_relay_secret_fails_with_what_to_set_and_never_shows_the_secret(capsys, settings, db, relay, tmp_path):
    wrong = "ab" * 32
    config = write_settings(tmp_path / "t.toml", {"relay": relay.config(api_secret=wrong)})
    code, out, err = tablebox(capsys, settings, "sync", "check", "relay", config=config)
    assert code == 1
    assert "Traceback" not in out + err and wrong not in out + err
    assert "  ✓ store enrolled: the relay knows store" in out
    failed = [line for line in out.splitlines() if line.startswith("  ✗ ")]
    assert failed == ["  ✗ signature accepted: the relay refused the signature (HTTP 401 bad_signature:"]
    assert "bad_signature: the signature does not match (wrong store secret?))" in " ".join(out.split())
    assert "→ Set api_secret in [sync.relay] (or $TABLEBOX_SYNC_RELAY_API_SECRET) to the 64 hex digits" in " ".join(
        out.split()
    )
    assert all(len(line) <= 80 for line in out.splitlines())
    kept = last_check(db, "relay")
    assert kept is not None and kept.outcome is CheckOutcome.FAIL


def test_an_unknown_store_id_fails_at_store_enrolled_and_stops_there(settings, db, relay):
    found = check_target(db, target("relay", relay.config(store_id="NotEnrolled123")), clock=lambda: NOW).checks
    assert [(c.name, c.state) for c in found] == [("reachable", CheckState.OK), ("store enrolled", CheckState.FAIL)]
    assert "knows no store NotEnrolled123" in found[1].detail
    assert "tablebox relay enroll STORE_NAME" in found[1].fix


def test_a_relay_whose_database_fails_is_reachable_but_failing_and_the_check_stops(db, relay, monkeypatch):
    def broken() -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(relay.storage, "ping", broken)
    (line,) = check_target(db, target("relay", relay.config()), clock=lambda: NOW).checks
    assert (line.name, line.state) == ("reachable", CheckState.FAIL)
    assert "answers, but its database is failing (healthz 503: failing)" in line.detail
    assert "relay's operator" in line.fix


def test_a_box_clock_off_by_an_hour_is_named_as_the_cause(relay):
    adapter = RelayAdapter("relay", relay.config(), clock=lambda: time.time() - 3600)
    try:
        found = adapter.check()
    finally:
        adapter.close()
    assert found[-1].name == "signature accepted" and found[-1].state is CheckState.FAIL
    assert "stale_timestamp" in found[-1].detail and "timedatectl" in found[-1].fix


def test_an_unreachable_relay_or_a_server_that_is_no_relay_fails_reachable_without_a_traceback(capsys, settings, db):
    import http.server
    import threading

    class NotARelay(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>nginx welcome</html>"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotARelay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        secret = "cd" * 32
        base = {"kind": "relay", "store_id": "k3Jd9QxA", "api_secret": secret, "timeout_seconds": 2}
        nobody = target("gone", {**base, "base_url": f"http://127.0.0.1:{free_port()}"})
        nginx = target("nginx", {**base, "base_url": f"http://127.0.0.1:{server.server_address[1]}"})
        (down,) = check_target(db, nobody, clock=lambda: NOW).checks
        (other,) = check_target(db, nginx, clock=lambda: NOW).checks
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (down.name, down.state) == ("reachable", CheckState.FAIL)
    assert "cannot reach the relay at" in down.detail and "curl -sS BASE_URL/healthz" in down.fix
    assert (other.name, other.state) == ("reachable", CheckState.FAIL)
    assert "answered HTTP 404 to /healthz, not as a Tablebox relay does" in other.detail
    assert "without a path" in other.fix


def test_warnings_alone_exit_0_and_show_as_bang_lines(capsys, settings, db, relay, tmp_path):
    config = write_settings(tmp_path / "t.toml", {"relay": relay.config(verify_tls=False)})
    code, out, _ = tablebox(capsys, settings, "sync", "check", "relay", config=config)
    assert code == 0
    assert "  ! TLS certificate: verify_tls = false: the relay's certificate is not checked" in out
    assert "    → Only for a test relay: remove verify_tls from [sync.relay]" in out
    assert "relay: ! " not in out and "1 to look at, 3 ok" in out
    kept = last_check(db, "relay")
    assert kept is not None and kept.outcome is CheckOutcome.WARN


def test_json_output_and_usage_errors(capsys, settings, db, relay, tmp_path):
    config = write_settings(
        tmp_path / "t.toml",
        {"relay": relay.config(), "spare": {**relay.config(api_secret="ef" * 32), "enabled": False}},
    )
    code, out, err = tablebox(capsys, settings, "sync", "check", "--json", config=config)
    assert code == 0, err  # the disabled target is left out unless named
    answer = json.loads(out)
    assert answer["outcome"] == "ok" and [t["target"] for t in answer["targets"]] == ["relay"]
    (relay_result,) = answer["targets"]
    assert relay_result["kind"] == "relay" and relay_result["outcome"] == "ok"
    assert [c["name"] for c in relay_result["checks"]] == ["reachable", "store enrolled", "signature accepted"]
    assert set(relay_result["checks"][0]) == {"name", "state", "detail", "fix"}
    code, out, _ = tablebox(capsys, settings, "sync", "check", "spare", "--json", config=config)
    assert code == 1 and json.loads(out)["outcome"] == "fail"  # named: checked although disabled
    code, out, err = tablebox(capsys, settings, "sync", "check", "sap", config=config)
    assert code == 2 and out == "" and "no [sync.sap] table to check (targets: relay, spare)" in err
    empty = write_settings(tmp_path / "none.toml", {})
    code, _, err = tablebox(capsys, settings, "sync", "check", config=empty)
    assert code == 2 and "no enabled sync target to check" in err


# -- an ERP adapter's checklist through the command line: the store's codes reach it ---------------------------------
def test_the_rest_erps_checklist_finds_every_dish_code_and_names_the_one_it_lacks(capsys, settings, db, tmp_path):
    from tests.fakes.erp_rest import FakeRestERP
    from tests.sync.syncd import seed_catalog

    erp = FakeRestERP()
    erp.start()
    try:
        seed_catalog(settings.db_path, erp)
        config = write_settings(tmp_path / "t.toml", {"erp": erp.target_config()})
        code, out, err = tablebox(capsys, settings, "sync", "check", "erp", config=config)
        assert code == 0, out + err
        dishes = db.execute("SELECT count(DISTINCT erp_code) FROM items WHERE removed_at IS NULL").fetchone()[0]
        assert f"  ✓ dish codes: all {dishes} dishes' codes are in the catalog" in out.splitlines()
        with write_transaction(db):
            db.execute("UPDATE items SET erp_code = 'HG-NEW' WHERE key = 'har_gow'")
        code, out, err = tablebox(capsys, settings, "sync", "check", "erp", config=config)
    finally:
        erp.stop()
    assert code == 1 and "Traceback" not in out + err
    text = " ".join(out.split())
    assert f"✗ dish codes: of {dishes} dishes' codes, 1 not in the ERP's catalog: HG-NEW" in text
    assert "→ Create or enable those items in the ERP, or correct the dishes' ERP codes" in text
    kept = last_check(db, "erp")
    assert kept is not None and kept.outcome is CheckOutcome.FAIL


# -- the framework, with adapters of the test's own -----------------------------------------------------------------
class ListAdapter:
    """An adapter whose check() answers what it is told, and remembers the inputs it was given."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    expected_codes: Sequence[str] = ()
    box_facts: Mapping[str, Any] = {}

    def __init__(self, name: str, answer: Any) -> None:
        self.name = name
        self.answer = answer
        self.seen: tuple[Sequence[str], Mapping[str, Any]] | None = None
        self.closed = False

    def check(self) -> Sequence[Check]:
        self.seen = (self.expected_codes, self.box_facts)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer  # type: ignore[no-any-return]

    def close(self) -> None:
        self.closed = True


def made(adapter: ListAdapter) -> Any:
    return lambda name, config: adapter


def test_the_adapter_gets_the_menus_erp_codes_and_the_box_facts(db):
    with write_transaction(db):
        db.execute("UPDATE items SET erp_code = 'HG-01' WHERE key = 'har_gow'")
        db.execute("UPDATE items SET erp_code = 'XLB-01' WHERE key IN ('xiaolongbao', 'crab_xiaolongbao')")
        db.execute("UPDATE items SET erp_code = 'OLD-9', removed_at = '2026-11-01T00:00:00Z' WHERE key = 'mapo_tofu'")
    adapter = ListAdapter("erp", [Check("reachable", CheckState.OK, "ERP 1.0")])
    result = check_target(db, target("erp", {"kind": "rest"}), adapter_factory=made(adapter), clock=lambda: NOW)
    assert adapter.seen is not None
    codes, facts = adapter.seen
    assert list(codes) == ["HG-01", "XLB-01"]  # each code once; a removed dish's left out
    assert facts == {
        "currency": "CNY",
        "prices_include_tax": True,
        "tax_rate_bp": 600,
        "payment_methods": ["cash", "card", "wechat", "alipay", "other"],
        "languages": ["zh", "en"],
    }
    assert adapter.closed and result.outcome is CheckState.OK
    assert ListAdapter.expected_codes == () and ListAdapter.box_facts == {}  # set on the instance, not the class


def test_an_adapter_that_raises_or_answers_nonsense_gives_a_failed_line_not_a_traceback(db):
    crashing = ListAdapter("erp", KeyError("warehouse"))
    (line,) = check_target(
        db, target("erp", {"kind": "rest"}), adapter_factory=made(crashing), clock=lambda: NOW
    ).checks
    assert (line.name, line.state) == ("check", CheckState.FAIL)
    assert line.detail == "the check stopped: KeyError: 'warehouse'"
    assert crashing.closed
    nonsense = ListAdapter("erp", [Check("reachable", CheckState.OK), "authenticated"])
    found = run_checklist(nonsense, [], {})
    assert [(c.name, c.state) for c in found] == [("reachable", CheckState.OK), ("check", CheckState.FAIL)]
    (nothing,) = run_checklist(ListAdapter("erp", []), [], {})
    assert nothing.state is CheckState.WARN and "checks nothing yet" in nothing.detail


def test_settings_the_adapter_cannot_be_built_from_are_a_failed_line(db):
    broken = target("erp", {"kind": "relay", "base_url": "http://127.0.0.1:9"})  # no store_id, no secret
    (line,) = check_target(db, broken, clock=lambda: NOW, where="/etc/tablebox/tablebox.toml").checks
    assert (line.name, line.state) == ("settings", CheckState.FAIL)
    assert "store_id is missing" in line.detail and line.fix == "Fix [sync.erp] in /etc/tablebox/tablebox.toml"


def test_secrets_are_taken_out_and_long_answers_wrapped_to_80_columns(db):
    secret = "s3cr3t-token-value"
    echo = ListAdapter(
        "erp",
        [
            Check(
                "authenticated",
                CheckState.FAIL,
                f"the ERP said: token {secret} is not valid for this site; " + "a very long explanation " * 12,
                "In the ERP: Settings > API keys > make a key for the Tablebox user and put it in token of "
                "[sync.erp] " * 3,
            )
        ],
    )
    result = check_target(
        db, target("erp", {"kind": "rest", "token": secret}), adapter_factory=made(echo), clock=lambda: NOW
    )
    lines = render(result)
    assert secret not in "\n".join(lines) and "token *** is not valid" in lines[1]
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("  ✗ authenticated: ") and lines[2].startswith("    ")
    fix_at = next(i for i, line in enumerate(lines) if line.startswith("    → In the ERP"))
    assert lines[fix_at + 1].startswith("      ")  # the fix's continuation lines stay under it
    assert lines[-1] == "  erp: 1 failed, 0 ok (2026-12-04 15:00:00Z)"
    kept = last_check(db, "erp")
    assert kept is not None and secret not in kept.lines[0].detail


# -- the console's request, answered by syncd -----------------------------------------------------------------------
def test_a_check_the_console_asked_for_is_run_once_by_syncd_on_its_own_thread(settings, db):
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
    erp = target("erp", {"kind": "rest"})
    adapter = ListAdapter("erp", [Check("reachable", CheckState.OK), Check("item codes", CheckState.WARN, "2 missing")])
    factory = made(adapter)
    assert answer_check_request(db, erp, settings.db_path, None, None, adapter_factory=factory) is None  # not asked
    with pytest.raises(DomainError, match="no sync target called 'sap'"):
        request_check(db, "sap", NOW)
    with write_transaction(db):
        request_check(db, "erp", NOW)
    running = answer_check_request(db, erp, settings.db_path, None, None, adapter_factory=factory)
    assert running is not None
    running.join(10)
    kept = last_check(db, "erp")
    assert kept is not None and not kept.pending and kept.ran_by == "console"
    assert kept.outcome is CheckOutcome.WARN and kept.lines[1].detail == "2 missing"
    assert answer_check_request(db, erp, settings.db_path, None, running, adapter_factory=factory) is None  # answered


def test_a_request_is_claimed_once_and_again_only_when_its_claim_went_stale(db):
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
        request_check(db, "erp", NOW)
    assert check_requested(db, "erp", NOW)
    with write_transaction(db):
        assert claim_check_request(db, "erp", NOW)
        assert not claim_check_request(db, "erp", NOW + timedelta(minutes=1))  # another syncd pass: already taken
    assert not check_requested(db, "erp", NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=16)  # syncd died in the middle: the request is taken up again
    assert check_requested(db, "erp", later)
    with write_transaction(db):
        assert claim_check_request(db, "erp", later)


def test_syncd_answers_the_console_through_the_relay(settings, db, relay):
    """The whole way: a request, the syncd side answering it against the real relay, the result stored."""
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('relay', 'relay')")
        request_check(db, "relay", NOW)
    running = answer_check_request(db, target("relay", relay.config()), settings.db_path, None, None)
    assert running is not None
    kept = wait_until(lambda: (r := last_check(db, "relay")) is not None and r.ran_at is not None and r)
    assert kept.outcome is CheckOutcome.OK and [line.name for line in kept.lines][-1] == "signature accepted"
    running.join(10)


def test_syncd_runs_a_check_the_console_asked_for_beside_its_deliveries(settings, db, tmp_path):
    """The whole way through tablebox-syncd: the target's loop sees the console's request, runs the check, stores it."""
    from appliance.cli.sync import register_sync_targets
    from appliance.settings import load_settings
    from sync.worker import SyncWorker
    from tests.fakes.erp_rest import FakeRestERP
    from tests.sync.syncd import seed_catalog

    erp = FakeRestERP()
    erp.start()
    try:
        seed_catalog(settings.db_path, erp)
        config = write_settings(tmp_path / "t.toml", {"erp": {**erp.target_config(), "pull_minutes": 0}})
        box = load_settings(environ={}, data_dir=settings.data_dir, config_file=config)
        register_sync_targets(box)
        with write_transaction(db):
            request_check(db, "erp", NOW)
        with SyncWorker(box, poll_seconds=0.05):
            kept = wait_until(lambda: (r := last_check(db, "erp")) is not None and r.ran_at is not None and r)
    finally:
        erp.stop()
    assert kept.ran_by == "console" and not kept.pending and kept.outcome is CheckOutcome.OK
    assert "dish codes" in [line.name for line in kept.lines]
