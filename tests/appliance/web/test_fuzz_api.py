"""Property-based fuzzing from our own OpenAPI description (schemathesis strategies driven by hypothesis):
whatever a phone sends to any operation, with a real table code, the answer is never a 500 and every
refusal is in our error shape."""

from __future__ import annotations

import uuid

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from tests.appliance.web.conftest import token_for
from tests.schemathesis_cli import run_schemathesis


def _real(value, ids):
    """Fold a generated id onto a real one, so generated orders reach the pricing rules."""
    return ids[value % len(ids)] if isinstance(value, int) and not isinstance(value, bool) else value


def test_no_input_makes_a_server_error(live, settings, db):
    ids = {
        table: [i for (i,) in db.execute(f"SELECT id FROM {table} ORDER BY id")]
        for table in ("items", "variants", "options")
    }
    schema = schemathesis.openapi.from_url(live.url + "/schema")
    token = token_for(settings, "A1")
    checked = []
    statuses: dict[str, set[int]] = {}
    codes: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") == "streamEvents":
            continue  # an endless stream: covered by test_events_api

        @given(case=operation.as_strategy())
        @hsettings(
            max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )  # the same examples every run: a red CI is a real finding
        def check(case):
            if "token" in (case.path_parameters or {}):
                case.path_parameters["token"] = token
            if isinstance(case.body, dict) and "lines" in case.body:
                # half of the orders get a well-formed key, so they reach the pricing rules behind the shape checks
                key = case.body.get("client_key")
                if isinstance(key, str) and len(key) % 2 == 0:
                    case.body["client_key"] = uuid.uuid4().hex
            lines = case.body.get("lines") if isinstance(case.body, dict) else None
            for line in lines if isinstance(lines, list) else []:
                if isinstance(line, dict):
                    line["item_id"] = _real(line.get("item_id"), ids["items"])
                    if isinstance(line.get("quantity"), int) and not isinstance(line["quantity"], bool):
                        line["quantity"] = 1 + abs(line["quantity"]) % 99
                    if line.get("variant_id") is not None:
                        line["variant_id"] = _real(line["variant_id"], ids["variants"])
                    if isinstance(line.get("option_ids"), list):
                        line["option_ids"] = [_real(o, ids["options"]) for o in line["option_ids"]]
            response = case.call(base_url=live.url)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)
            statuses.setdefault(operation.definition.raw.get("operationId"), set()).add(response.status_code)  # noqa: B023 (called in this iteration)
            content_type = (response.headers.get("content-type") or [""])[0]
            if response.status_code >= 400 and content_type.startswith("application/json"):
                body = response.json()
                assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
                codes.add(body["error"]["code"])

        check()
        checked.append(operation.definition.raw.get("operationId"))
    assert {"submitOrder", "getMenu", "requestService", "getTable", "listVisitOrders", "health"} <= set(checked)
    # the generated orders reached the pricing rules, not only the body validation
    assert 422 in statuses["submitOrder"]
    assert codes & {
        "sold_out",
        "unknown_variant",
        "invalid_option",
        "variant_required",
        "price_changed",
        "text_too_long",
        "unavailable_now",
        "not_enough_stock",
    }, codes


# -- schemathesis --checks all: the description and the answers agree --------------------------------------------
def test_schemathesis_finds_nothing_with_the_codes_it_makes_up(live, tmp_path):
    """Every check (server errors, status codes, content types, headers, response shapes, schema-valid requests
    accepted and schema-invalid ones refused, methods, Allow): with the table codes schemathesis makes up, every
    answer past the body's checks is 403, so schema-valid bodies must pass the strict decoder exactly."""
    cases = run_schemathesis(live.url, tmp_path, examples=40)
    assert cases >= 200


def test_schemathesis_finds_nothing_with_a_real_table_code(live, settings, tmp_path):
    """The same checks with a real code, so orders reach the pricing rules, except `positive_data_acceptance`: a
    schema-valid order may name a dish that is not on the menu or sold out (422 `unknown_item`, `sold_out`, ...),
    which the description documents and no JSON Schema can express."""
    config = f'[parameters]\ntoken = "{token_for(settings, "A1")}"\n'
    cases = run_schemathesis(
        live.url, tmp_path, config=config, args=("--exclude-checks", "positive_data_acceptance"), examples=40
    )
    assert cases >= 200
