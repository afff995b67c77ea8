"""The one HTTP base of every sync target (sync/adapters/http.py): TLS settings reaching every adapter over a real
HTTPS server on 127.0.0.1, one status classification, Retry-After carried on Retryable, one scrubbing function. If
these failed, a shop's ERP behind its own CA could not be reached (or, worse, an adapter would skip the check), one
adapter would park a row another retries, or a key could end up in a log."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from sync.adapters import make_adapter
from sync.adapters.base import Rejected, Retryable
from sync.adapters.erpnext import ERPNextAdapter
from sync.adapters.http import (
    RETRYABLE_STATUSES,
    HttpAdapter,
    Verdict,
    classify,
    retry_after_seconds,
    scrub,
    tls_verify,
)
from sync.adapters.odoo import OdooAdapter
from sync.adapters.relay import RelayAdapter, RelayClient
from sync.adapters.rest import RestAdapter

SECRET_HEX = "ab" * 32


# -- a real HTTPS server with a certificate from a CA of its own ------------------------------------------------------
def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _sign(here: Path, name: str, subject: str, ext: str, ca: str = "ca") -> None:
    """name.key + name.pem for `subject`, signed by ca.pem/ca.key (or another CA's files)."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=here)
    (here / f"{name}.ext").write_text(ext + "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        cwd=here,
    )


def _ca(here: Path, name: str, subject: str) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        "-days",
        "2",
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=here,
    )


CLIENT_KEY_PASSWORD = "kitchen-pass-5e2d"


def make_certificates(here: Path) -> Path:
    """A test CA and a server certificate it signed for 127.0.0.1 (what a shop's own CA in front of its ERP is); a
    client CA (the ERP's, for mutual TLS) with a client certificate it signed (client.pem/client.key, and the same key
    encrypted as client-encrypted.key), and a client certificate from a CA the ERP does not know (stranger.*)."""
    _ca(here, "ca", "/CN=Tablebox test CA")
    server_ext = "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    _sign(here, "server", "/CN=127.0.0.1", server_ext + "extendedKeyUsage=serverAuth\n")
    client_ext = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    _ca(here, "client-ca", "/CN=ERP client CA")
    _sign(here, "client", "/CN=tablebox-store-1", client_ext, ca="client-ca")
    _ca(here, "other-ca", "/CN=Someone else's CA")
    _sign(here, "stranger", "/CN=tablebox-stranger", client_ext, ca="other-ca")
    openssl(
        "pkey",
        "-in",
        "client.key",
        "-aes256",
        "-passout",
        f"pass:{CLIENT_KEY_PASSWORD}",
        "-out",
        "client-encrypted.key",
        cwd=here,
    )
    return here


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("tls"))


class Busy(http.server.BaseHTTPRequestHandler):
    """Every request: 503 with Retry-After: 7 (an ERP restarting), counted."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        body = json.dumps({"error": {"code": "storage_unavailable", "message": "restarting"}}).encode()
        self.send_response(503)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


class HttpsServer(http.server.ThreadingHTTPServer):
    def __init__(self, certificates: Path) -> None:
        super().__init__(("127.0.0.1", 0), Busy)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.paths: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client refusing our certificate: expected in these tests

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


def serving(server: HttpsServer) -> Iterator[HttpsServer]:
    """`server` answering on its own thread until the test ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def https(certificates: Path) -> Iterator[HttpsServer]:
    yield from serving(HttpsServer(certificates))


# Each kind of target, made from its settings, and one call that goes over the wire.
KINDS: dict[str, tuple[dict[str, Any], Callable[[Any], Any]]] = {
    "rest": ({"api_key": "rest-key-1234"}, lambda adapter: adapter.pull_catalog()),
    "erpnext": ({"api_key": "k-1234", "api_secret": "s-5678"}, lambda adapter: adapter.pull_stock()),
    "odoo": ({"api_key": "odoo-key-1234", "database": "shop"}, lambda adapter: adapter.pull_stock()),
    "relay": ({"store_id": "store1234", "api_secret": SECRET_HEX}, lambda adapter: adapter.client.poll(0, 0)),
}


def adapter_for(kind: str, url: str, **settings: Any) -> Any:
    extra, _ = KINDS[kind]
    return make_adapter("erp", {"kind": kind, "base_url": url, "timeout_seconds": 5, **extra, **settings})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_adapter_checks_the_certificate_and_trusts_its_ca_file(
    kind: str, https: HttpsServer, certificates: Path
) -> None:
    _, call = KINDS[kind]
    # Default: the system's CAs, which do not know the shop's: refused before any request is sent.
    adapter = adapter_for(kind, https.url)
    try:
        with pytest.raises(Retryable, match="cannot reach") as refused:
            call(adapter)
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message and refused.value.status is None
        assert https.paths == []
    finally:
        adapter.close()
    # ca_file: the shop's CA is trusted, the request reaches the server, and its 503 + Retry-After come back.
    adapter = adapter_for(kind, https.url, ca_file=str(certificates / "ca.pem"))
    try:
        with pytest.raises(Retryable) as busy:
            call(adapter)
        assert busy.value.status == 503 and busy.value.retry_after == 7.0
        assert len(https.paths) == 1
    finally:
        adapter.close()
    # verify_tls = false (a test server): no check at all.
    adapter = adapter_for(kind, https.url, verify_tls=False)
    try:
        with pytest.raises(Retryable) as busy:
            call(adapter)
        assert busy.value.status == 503 and len(https.paths) == 2
    finally:
        adapter.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bad_tls_settings_are_named_for_every_adapter(kind: str, tmp_path: Path) -> None:
    (tmp_path / "not-a-ca.pem").write_text("hello\n")
    for settings, complaint in [
        ({"ca_file": str(tmp_path / "missing.pem")}, "cannot use ca_file"),
        ({"ca_file": str(tmp_path / "not-a-ca.pem")}, "cannot use ca_file"),
        ({"verify_tls": "no"}, "verify_tls must be true or false"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a number from 0.1 to 120"),
        ({"base_url": "erp.example.com"}, "base_url must start with http"),
    ]:
        with pytest.raises(ValueError, match=complaint):
            adapter_for(kind, "https://erp.example.com", **settings)


def test_tls_verify_defaults_to_checking(certificates: Path) -> None:
    assert tls_verify("erp", {}) is True and tls_verify("erp", {"verify_tls": False}) is False
    assert isinstance(tls_verify("erp", {"ca_file": str(certificates / "ca.pem")}), ssl.SSLContext)


# -- client certificates (mutual TLS) for every target --------------------------------------------------------------
class MutualTlsServer(HttpsServer):
    """As HttpsServer, and only for a client presenting a certificate the ERP's client CA signed (nginx's
    `ssl_verify_client on`)."""

    def __init__(self, certificates: Path) -> None:
        http.server.ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), Busy)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates / "client-ca.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.paths = []


@pytest.fixture
def mutual_tls(certificates: Path) -> Iterator[HttpsServer]:
    yield from serving(MutualTlsServer(certificates))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_adapter_presents_its_client_certificate(kind: str, mutual_tls: HttpsServer, certificates: Path) -> None:
    """If this failed, a shop whose ERP sits behind a proxy asking for client certificates could not be reached by
    that kind of target, or its rows would retry forever on a certificate only a person can fix."""
    _, call = KINDS[kind]
    ca = {"ca_file": str(certificates / "ca.pem")}
    for settings, refusal in [
        ({}, "refused our client certificate (TLS alert: certificate required): set client_cert and client_key"),
        (
            {"client_cert": str(certificates / "stranger.pem"), "client_key": str(certificates / "stranger.key")},
            "refused our client certificate (TLS alert: unknown ca): check client_cert",
        ),
    ]:
        adapter = adapter_for(kind, mutual_tls.url, **ca, **settings)
        try:
            with pytest.raises(Rejected) as refused:
                call(adapter)
            assert refusal in refused.value.message
        finally:
            adapter.close()
    assert mutual_tls.paths == []
    for key in ("client.key", "client-encrypted.key"):
        adapter = adapter_for(
            kind,
            mutual_tls.url,
            **ca,
            client_cert=str(certificates / "client.pem"),
            client_key=str(certificates / key),
            client_key_password=CLIENT_KEY_PASSWORD if key == "client-encrypted.key" else None,
        )
        try:
            with pytest.raises(Retryable) as busy:  # the request got through: the server's own 503 came back
                call(adapter)
            assert busy.value.status == 503 and busy.value.retry_after == 7.0
        finally:
            adapter.close()
    assert len(mutual_tls.paths) == 2
    adapter = adapter_for(
        kind,
        mutual_tls.url,
        **ca,
        client_cert=str(certificates / "client.pem"),
        client_key=str(certificates / "client-encrypted.key"),
        client_key_password=CLIENT_KEY_PASSWORD,
    )
    try:
        client: HttpAdapter = adapter.client if isinstance(adapter, RelayAdapter) else adapter
        assert CLIENT_KEY_PASSWORD not in client.scrub(f"echoed: {CLIENT_KEY_PASSWORD}")
    finally:
        adapter.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bad_client_certificate_settings_are_named(kind: str, certificates: Path) -> None:
    cert, key = str(certificates / "client.pem"), str(certificates / "client.key")
    for settings, complaint in [
        ({"client_key": key}, "client_key is set but client_cert is not"),
        ({"client_cert": str(certificates / "missing.pem"), "client_key": key}, "cannot read"),
        ({"client_cert": cert, "client_key": str(certificates / "stranger.key")}, "the key does not belong"),
        (
            {"client_cert": cert, "client_key": str(certificates / "client-encrypted.key")},
            "is encrypted: set client_key_password",
        ),
        (
            {
                "client_cert": cert,
                "client_key": str(certificates / "client-encrypted.key"),
                "client_key_password": "not-the-password",
            },
            "client_key_password does not open the key",
        ),
        ({"client_cert": 7}, "client_cert must be the path of a PEM file"),
    ]:
        with pytest.raises(ValueError, match=complaint):
            adapter_for(kind, "https://erp.example.com", **settings)


# -- one classification table ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status,verdict",
    [
        (200, Verdict.OK),
        (201, Verdict.OK),
        (204, Verdict.OK),
        (301, Verdict.REDIRECT),
        (302, Verdict.REDIRECT),
        (307, Verdict.REDIRECT),
        (400, Verdict.REFUSED),
        (404, Verdict.REFUSED),
        (409, Verdict.REFUSED),
        (417, Verdict.REFUSED),
        (422, Verdict.REFUSED),
        (423, Verdict.REFUSED),
        (401, Verdict.CREDENTIALS),
        (403, Verdict.CREDENTIALS),
        (408, Verdict.RETRY),
        (425, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (599, Verdict.RETRY),
    ],
)
def test_the_default_classification(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_each_erp_adds_only_its_own_retryable_codes() -> None:
    assert {408, 425, 429} == RETRYABLE_STATUSES
    own = {cls.__name__: cls.extra_retryable for cls in (RestAdapter, ERPNextAdapter, OdooAdapter, RelayClient)}
    assert own == {
        "RestAdapter": frozenset(),
        "ERPNextAdapter": {423},
        "OdooAdapter": {409},
        "RelayClient": frozenset(),
    }
    for cls in (RestAdapter, ERPNextAdapter, OdooAdapter, RelayClient):
        for status in (*RETRYABLE_STATUSES, 500, 502, 503, 504):
            assert classify(status, cls.extra_retryable) is Verdict.RETRY, (cls.__name__, status)
        for status in (400, 404, 422):
            assert classify(status, cls.extra_retryable) is Verdict.REFUSED, (cls.__name__, status)
    assert classify(423, ERPNextAdapter.extra_retryable) is Verdict.RETRY
    assert classify(409, OdooAdapter.extra_retryable) is Verdict.RETRY
    assert classify(409, ERPNextAdapter.extra_retryable) is Verdict.REFUSED  # ERPNext: a duplicate, looked up


def test_every_http_client_shares_the_base() -> None:
    for cls in (RestAdapter, ERPNextAdapter, OdooAdapter, RelayClient):
        assert issubclass(cls, HttpAdapter)
        assert cls.scrub is HttpAdapter.scrub and cls.send_request is HttpAdapter.send_request
        assert cls.classify is HttpAdapter.classify and cls.retryable is HttpAdapter.retryable
        assert not {"_scrub", "_redact", "_client", "_http"} & set(vars(cls)), cls.__name__


# -- Retry-After -------------------------------------------------------------------------------------------------------
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "header,seconds",
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),  # "Sat, 21 Nov 2026 12:01:30 GMT"
        ("Sat, 21 Nov 2026 12:01:30 GMT", 90.0),
        ("Saturday, 21-Nov-26 12:01:30 GMT", 90.0),  # the obsolete RFC 850 form
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),  # already past: at once
        ("999999999", 86_400.0),  # capped at a day
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("١٢", None),
    ],
)
def test_retry_after_in_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_an_answer_without_retry_after_carries_none(https: HttpsServer, certificates: Path) -> None:
    class Plain(HttpAdapter):
        peer = "the test server"

    adapter = Plain("erp", {"base_url": https.url, "ca_file": str(certificates / "ca.pem")})
    try:
        response = adapter.send("GET", "/anything")
        assert adapter.retryable("busy", response).retry_after == 7.0
        response.headers.pop("retry-after")
        assert adapter.retryable("busy", response).retry_after is None
        assert adapter.retryable("no answer").status is None
    finally:
        adapter.close()


# -- one scrubbing function --------------------------------------------------------------------------------------------
def test_scrubbing_takes_the_longest_secret_first_and_leaves_tiny_ones() -> None:
    text = "401 for token k-1234:s-5678 (key k-1234) at https://erp.example.com?x=1"
    assert (
        scrub(text, ["k-1234", "s-5678", "k-1234:s-5678"])
        == "401 for token *** (key ***) at https://erp.example.com?x=1"
    )
    assert scrub("a x b", ["x", ""]) == "a x b"  # under 4 characters: would garble every message
    assert scrub("nothing secret", []) == "nothing secret"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_adapter_scrubs_its_own_secrets_from_what_it_raises(kind: str) -> None:
    adapter = adapter_for(kind, "https://erp.example.com")
    try:
        secrets = [value for key, value in KINDS[kind][0].items() if key in ("api_key", "api_secret")]
        client: HttpAdapter = adapter.client if isinstance(adapter, RelayAdapter) else adapter
        text = client.scrub(f"echoed: {' '.join(secrets)}")
        assert text == "echoed: " + " ".join("***" for _ in secrets)
        assert all(secret not in client.rejected(f"refused {secrets}", 400).message for secret in secrets)
    finally:
        adapter.close()


def test_a_refused_answer_names_the_peer_and_never_a_key(https: HttpsServer, certificates: Path) -> None:
    adapter = adapter_for("rest", https.url, ca_file=str(certificates / "ca.pem"), api_key="rest-key-1234")
    try:
        with pytest.raises(Retryable) as busy:
            adapter.pull_catalog()
        assert busy.value.message.startswith("erp: HTTP 503 from the ERP for GET /items (")
        assert "rest-key-1234" not in busy.value.message
    finally:
        adapter.close()
