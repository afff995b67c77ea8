"""The one contract between the box and the public relay: what both sides import, so neither keeps a copy.

- `diner`: the diner API's request and response shapes (what `/api/v1/tables/{token}` takes and answers, on the
  box and, under `/s/{store_id}`, on the relay), and the error shape every refusal has.
- `decode`: the strict decoder for those bodies and the cleaning of diners' notes: a body the box refuses on the
  store's Wi-Fi is refused the same way, with the same code and details, by the relay and by the box's relay link.
- `menu`: the menu and store rendering (the store's menu and settings -> the API's shapes), the one the box serves
  and pushes to the relay.
- `signing`: the signed box requests (HMAC-SHA256), made by the box and checked by the relay.
- `relay`: the relay protocol itself: the inbox messages the box long-polls, the events it posts back, the menu
  push, the order view phones are shown, and the relay source key the box records applied messages under.

Imports: the standard library, msgspec and `appliance.domain` only (tests/test_architecture.py checks it).
"""
