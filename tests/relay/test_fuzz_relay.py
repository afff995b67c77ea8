"""schemathesis `--checks all` over the relay (uvicorn on 127.0.0.1): its description (`/schema`) and its answers
agree, for phones (a real store with its box online, a real table code) and for boxes (unsigned: every box request
is a 401 before anything else, and over 60 a minute a 429)."""

from __future__ import annotations

import pytest

from appliance.contract.relay import table_code_hash
from appliance.domain.tokens import TableRef, sign_table_token
from tests.schemathesis_cli import run_schemathesis

BOX_STORE = "0a0b0c0d"  # the store id inside the box's table codes


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_nothing(relay, tmp_path):
    box = relay.enroll()
    token = sign_table_token(b"s" * 32, TableRef(BOX_STORE, 1, 1))
    pushed = box.request(
        "PUT",
        "/v1/box/menu",
        {
            "version": 1,
            "store": {"name": "Dumpling House", "currency": "CNY", "languages": ["zh", "en"], "open_now": True},
            "menus": {lang: {"version": 1, "lang": lang, "categories": []} for lang in ("zh", "en")},
            "token_store": BOX_STORE,
            "tables": [{"id": 1, "name": "A1", "version": 1, "code_hash": table_code_hash(token)}],
        },
    )
    assert pushed.status_code == 200, pushed.text
    assert box.poll().status_code == 200  # online: the relay's clock stands still in tests
    config = (
        f'[parameters]\nstore_id = "{box.store_id}"\ntoken = "{token}"\n\n'
        # a box request without a signature is a 401, or a 429 once its address has been refused 60 times a minute
        # (the refusal limiter): schemathesis sends far more than that
        "[checks.missing_required_header]\nexpected-statuses = [400, 401, 403, 406, 415, 422, 429]\n"
    )
    cases = run_schemathesis(relay.url, tmp_path, config=config, examples=30)
    assert cases >= 300
    # the orders schemathesis made are in the store's inbox, as the box will read them
    assert box.poll().json()["messages"]
