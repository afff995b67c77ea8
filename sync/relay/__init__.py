"""The public relay: phones off the store Wi-Fi (and a WeChat Mini Program) order through it; the box never
opens a port. `app.py` is the relay service, `storage.py` its database; what the box and the relay share (the diner
API's shapes, the strict decoder, request signing, the inbox messages and events) is `appliance.contract`. The box
side lives in `sync/adapters/relay.py` and `sync/relay_link.py`."""
