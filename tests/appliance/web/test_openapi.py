"""/schema describes the diner API as it really answers: every operation, its refusals, and its shapes."""

from __future__ import annotations

import msgspec

from appliance.contract.diner import MenuOut, OrderOut, ServiceRequestOut, TableInfoOut, VisitOrdersOut
from appliance.web.schemas import HealthOut
from tests.appliance.web.conftest import item_id, key


def _schema_of(spec, ref_or_schema):
    ref = ref_or_schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return ref_or_schema


def test_every_operation_is_described_with_its_status_codes(client):
    spec = client.get("/schema").json()
    assert spec["openapi"].startswith("3.")
    ops = {op["operationId"]: (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()}
    expected = {
        "getTable": 200,
        "getMenu": 200,
        "submitOrder": 201,
        "listVisitOrders": 200,
        "streamEvents": 200,
        "requestService": 201,
        "health": 200,
    }
    assert expected.keys() <= ops.keys()
    submit = ops["submitOrder"][2]
    assert ops["submitOrder"][:2] == ("/api/v1/tables/{token}/orders", "post")
    assert {"200", "201", "400", "403", "409", "410", "413", "422", "429", "503"} <= set(submit["responses"])
    body = _schema_of(spec, submit["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"client_key", "lines"}
    assert "price_minor" not in str(body)  # the phone never sends a price
    assert "price_changed" in submit["responses"]["409"]["description"]
    ok = _schema_of(spec, submit["responses"]["201"]["content"]["application/json"]["schema"])
    assert set(ok["properties"]) == set(OrderOut.__struct_fields__)
    assert ops["streamEvents"][2]["responses"]["200"]["content"].keys() == {"text/event-stream"}
    assert "/schema" not in spec["paths"]


def test_real_answers_decode_strictly_as_the_documented_types(client, token, db):
    spec = client.get("/schema").json()
    har_gow = item_id(db, "har_gow")
    checks = [
        (client.get(f"/api/v1/tables/{token}"), TableInfoOut, "getTable"),
        (client.get(f"/api/v1/tables/{token}/menu"), MenuOut, "getMenu"),
        (
            client.post(
                f"/api/v1/tables/{token}/orders",
                json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]},
            ),
            OrderOut,
            "submitOrder",
        ),
        (client.get(f"/api/v1/tables/{token}/orders"), VisitOrdersOut, "listVisitOrders"),
        (client.post(f"/api/v1/tables/{token}/requests", json={"kind": "waiter"}), ServiceRequestOut, "requestService"),
        (client.get("/healthz"), HealthOut, "health"),
    ]
    ops = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()}
    for response, kind, op_id in checks:
        assert response.status_code in (200, 201), (op_id, response.text)
        msgspec.json.decode(response.content, type=kind, strict=True)  # raises on any extra or wrong field
        documented = _schema_of(
            spec, ops[op_id]["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        )
        assert set(documented["properties"]) == set(response.json()), op_id


def test_errors_have_the_documented_shape(client, token):
    spec = client.get("/schema").json()
    r = client.get(f"/api/v1/tables/{token[:-1]}{'z' if token[-1] != 'z' else 'y'}")
    assert r.status_code == 403
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    op = spec["paths"]["/api/v1/tables/{token}"]["get"]
    err = _schema_of(spec, op["responses"]["403"]["content"]["application/json"]["schema"])
    assert set(err["properties"]) == {"error"}
