"""The client against real HTTP servers on loopback: the sandbox for the contract,
pytest-httpserver and raw sockets for the ways an upstream misbehaves."""

import contextlib
import datetime
import gzip
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Response

from customers.upstream import errors, solarproof
from customers.upstream.solarproof import Customer, SolarProofClient
from tests.support.processes import closed_port_url

KEY = "s3cret-key-XYZ-123"
PATH = "/apidata.php"


@pytest.fixture
def sandbox_client(sandbox_server) -> SolarProofClient:
    return SolarProofClient(base_url=sandbox_server.url, api_key=sandbox_server.api_key, timeout=2.0)


@pytest.fixture
def client(httpserver) -> SolarProofClient:
    return SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=1.0, retries=2)


def test_it_returns_the_documented_example_customer(sandbox_client):
    customer = sandbox_client.get_customer_of_project(2143)

    assert customer == Customer(
        customer_id=79298,
        first_name="Judy",
        surname="Matherson",
        phone1="61411549054",
        email="judymatherson@gmail.com",
        company_name="Solar Proof",
        company_phone="1300 602 452",
        gst_registered=False,
        site_address="132 Mono Drive, Brisbane, QLD, 4321",
    )
    assert customer.full_name == "Judy Matherson"


@pytest.mark.parametrize(
    ("project_id", "error"),
    [
        (9400, errors.InvalidParameters),
        (9401, errors.InvalidApiKey),
        (9403, errors.NotAuthorised),
        (9404, errors.ProjectNotFound),
        (9405, errors.NoCustomerAssigned),
        (123456, errors.ProjectNotFound),
        (9200, errors.ProjectNotFound),  # legacy NOT_FOUND, sent with 200
        (9201, errors.InvalidApiKey),  # legacy API_KEY_INVALID, sent with 200
        (9202, errors.UpstreamError),  # legacy UNKNOWN
        (9500, errors.UpstreamError),  # PHP fatal error page
        (9502, errors.UpstreamSaysUnavailable),  # bad gateway
        (9503, errors.UpstreamSaysUnavailable),
        (9520, errors.UpstreamError),  # truncated JSON
        (9521, errors.UpstreamError),  # Customer is a string
    ],
)
def test_it_raises_a_typed_error_for_each_answer_that_is_not_a_customer(sandbox_client, project_id, error):
    with pytest.raises(error) as raised:
        sandbox_client.get_customer_of_project(project_id)
    assert type(raised.value) is error
    assert str(raised.value) == error.advice


def test_it_reports_a_wrong_key_as_invalid(sandbox_server):
    client = SolarProofClient(base_url=sandbox_server.url, api_key="wrong", timeout=2.0)
    with pytest.raises(errors.InvalidApiKey):
        client.get_customer_of_project(2143)


def test_it_accepts_a_customer_sent_as_text_html(sandbox_client):
    assert sandbox_client.get_customer_of_project(9210).first_name == "Helen"


def test_it_accepts_numbers_as_strings_and_missing_optional_fields(sandbox_client):
    customer = sandbox_client.get_customer_of_project(2146)
    assert customer.customer_id == 72146
    assert customer.gst_registered is True
    assert (customer.phone2, customer.note, customer.contact_time, customer.abn) == ("", "", "", "")


def test_it_sends_the_contract_parameters(client, httpserver):
    httpserver.expect_request(
        PATH, query_string={"action": "getcustomerofproject", "project_id": "77", "api_key": KEY}
    ).respond_with_json({"Customer": {"customerID": 1}})
    assert client.get_customer_of_project(77).customer_id == 1
    headers = httpserver.log[0][0].headers
    assert (headers["Accept"], headers["User-Agent"]) == ("application/json", "solarproof-staff-portal/1")


def test_it_decides_from_the_body_when_an_error_comes_with_200(client, httpserver):
    httpserver.expect_request(PATH).respond_with_json({"code": "NO_CUSTOMER_ASSIGNED", "message": "x"}, status=200)
    with pytest.raises(errors.NoCustomerAssigned):
        client.get_customer_of_project(1)


def test_it_ignores_unknown_fields_and_odd_types(client, httpserver):
    body = {
        "Message": "ok",
        "Customer": {
            "CustomerID": "42",
            "firstName": "  Ann  ",
            "surname": None,
            "phone1": 61411549054,
            "gstRegistered": "yes",
            "note": "line one\r\nline two",
            "siteAddress": ["not", "a", "string"],
            "brandNewField": {"nested": True},
        },
        "paging": None,
    }
    httpserver.expect_request(PATH).respond_with_data(json.dumps(body), content_type="text/plain")
    customer = client.get_customer_of_project(1)
    assert customer == Customer(
        customer_id=42, first_name="Ann", phone1="61411549054", gst_registered=True, note="line one\nline two"
    )


def test_it_accepts_a_byte_order_mark(client, httpserver):
    httpserver.expect_request(PATH).respond_with_data(
        b"\xef\xbb\xbf" + json.dumps({"Customer": {"customerID": 5}}).encode()
    )
    assert client.get_customer_of_project(1).customer_id == 5


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html><body>Maintenance</body></html>", "HTTP 200 without a usable JSON body"),
        (b"not json at all", "HTTP 200 without a usable JSON body"),
        (b"[1, 2, 3]", "HTTP 200 without a usable JSON body"),
        (b'{"Customer": {"firstName": "no id"}}', "customer without a usable customerID"),
        (b'{"Customer": "Judy Matherson"}', "customer field is not an object"),
        (b'{"code": "SOMETHING_NEW", "message": "?"}', "unknown error code"),
        (b'{"Message": "neither customer nor code"}', "HTTP 200, neither a customer nor an error code"),
        (b"\xff\xfe\x00garbage", "HTTP 200 without a usable JSON body"),
    ],
)
def test_it_treats_an_unusable_answer_as_an_upstream_error(client, httpserver, body, detail):
    httpserver.expect_request(PATH).respond_with_data(body, status=200)
    with pytest.raises(errors.UpstreamError) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamError
    assert raised.value.detail == detail  # the log says what was wrong with it


def test_it_refuses_a_huge_body(client, httpserver):
    huge = json.dumps({"Customer": {"customerID": 1, "note": "x" * (solarproof.MAX_BODY_BYTES + 10)}})
    httpserver.expect_request(PATH).respond_with_data(huge)
    with pytest.raises(errors.UpstreamError):
        client.get_customer_of_project(1)


def test_it_refuses_a_huge_body_without_a_content_length(client, httpserver):
    def chunks() -> Iterator[bytes]:
        yield b'{"Customer": {"customerID": 1, "note": "'
        for _ in range(100):
            yield b"x" * 8192

    httpserver.expect_request(PATH).respond_with_response(Response(chunks(), content_type="application/json"))
    with pytest.raises(errors.UpstreamError):
        client.get_customer_of_project(1)


def _body_of_exactly(size: int) -> bytes:
    """A valid customer answer of exactly ``size`` bytes."""
    start, end = b'{"Customer": {"customerID": 1, "note": "', b'"}}'
    return start + b"x" * (size - len(start) - len(end)) + end


def _sent_in_chunks(body: bytes) -> Response:
    """No Content-Length: werkzeug sends a generator's body chunked."""

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), 8192):
            yield body[offset : offset + 8192]

    return Response(chunks(), content_type="application/json")


def test_it_refuses_a_valid_answer_one_byte_over_the_limit_without_a_content_length(client, httpserver):
    httpserver.expect_request(PATH).respond_with_response(
        _sent_in_chunks(_body_of_exactly(solarproof.MAX_BODY_BYTES + 1))
    )
    with pytest.raises(errors.UpstreamError) as raised:
        client.get_customer_of_project(1)
    assert raised.value.detail == "body too large"


def test_it_accepts_a_valid_answer_exactly_at_the_limit_without_a_content_length(client, httpserver):
    httpserver.expect_request(PATH).respond_with_response(_sent_in_chunks(_body_of_exactly(solarproof.MAX_BODY_BYTES)))
    assert client.get_customer_of_project(1).customer_id == 1


def _declares_a_huge_body(conn: socket.socket, stop: threading.Event) -> bool:
    body = json.dumps({"Customer": {"customerID": 1}}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000\r\n\r\n" + body)
    stop.wait(5)  # the rest of what was declared never comes
    return False


def test_it_refuses_a_declared_huge_body_without_waiting_for_it(counting_server):
    server = counting_server(_declares_a_huge_body)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamError) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamError
    assert raised.value.detail == "body too large (declared)"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_it_never_follows_a_redirect_from_solar_proof(client, httpserver, status):
    """A redirect could send the request, API key in its query string, anywhere."""
    elsewhere = httpserver.url_for("/elsewhere")
    httpserver.expect_request(PATH).respond_with_data("", status=status, headers={"Location": elsewhere})
    httpserver.expect_request("/elsewhere").respond_with_json({"Customer": {"customerID": 666}})
    with pytest.raises(errors.UpstreamError):
        client.get_customer_of_project(1)
    assert [request.path for request, _ in httpserver.log] == [PATH]


@pytest.mark.parametrize(
    "body",
    [
        {"Customer": {}},
        {"Customer": []},
        {"Customer": False},
        {"Customer": None},
        {"Customer": ""},
        {"customer": {}, "Message": "ok"},
    ],
    ids=["empty object", "empty list", "false", "null", "empty string", "lower case"],
)
def test_an_empty_customer_in_any_of_phps_spellings_means_no_customer(client, httpserver, body):
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(errors.NoCustomerAssigned) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.NoCustomerAssigned
    assert raised.value.detail == "customer field empty"


@pytest.mark.parametrize(
    "customer_id",
    [
        -1,
        "-1",
        -0.5,
        True,
        False,
        1234567890123456789,
        "1234567890123456789",
        10**18,
        1e18,
        9999999999999999999,
        1e19,
        12.5,
        "12a",
        "",
    ],
)
def test_it_refuses_a_customer_id_that_is_not_a_small_enough_whole_number(client, httpserver, customer_id):
    """Negative, boolean or 19-digit IDs: beyond the 18 digits the audit log's column holds."""
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": customer_id, "firstName": "Judy"}})
    with pytest.raises(errors.UpstreamError) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamError
    assert raised.value.detail == "customer without a usable customerID"  # what the log says


@pytest.mark.parametrize(
    ("customer_id", "expected"),
    [(0, 0), (999999999999999999, 999999999999999999), (" 999999999999999999 ", 999999999999999999), (42.0, 42)],
)
def test_it_accepts_customer_ids_up_to_eighteen_digits(client, httpserver, customer_id, expected):
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": customer_id}})
    assert client.get_customer_of_project(1).customer_id == expected


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"code": "project_not_found"}, errors.ProjectNotFound),
        ({"Code": " no_customer_assigned "}, errors.NoCustomerAssigned),
        ({"error": "Unauthorised"}, errors.NotAuthorised),
        ({"ERROR": "invalid_api_key"}, errors.InvalidApiKey),
        ({"code": "invalid_parameters"}, errors.InvalidParameters),
    ],
)
def test_it_recognises_error_codes_in_any_case(client, httpserver, body, error):
    httpserver.expect_request(PATH).respond_with_json(body, status=200)
    with pytest.raises(error) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is error
    code = next(iter(body.values())).strip().upper()
    assert raised.value.detail == f"code {code}"  # the log names the code as the contract spells it


@pytest.mark.parametrize("status", [502, 503, 504])
def test_it_retries_a_bad_gateway_then_succeeds(client, httpserver, status):
    httpserver.expect_ordered_request(PATH).respond_with_data("bad gateway", status=status)
    httpserver.expect_ordered_request(PATH).respond_with_json({"Customer": {"customerID": 9}})
    assert client.get_customer_of_project(1).customer_id == 9
    assert len(httpserver.log) == 2


def test_it_gives_up_on_a_lasting_outage_as_unavailable(client, httpserver):
    httpserver.expect_request(PATH).respond_with_data("unavailable", status=503)
    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)
    assert len(httpserver.log) == 3  # the first try and two retries


def test_it_does_not_retry_a_server_error(client, httpserver):
    httpserver.expect_request(PATH).respond_with_data("boom", status=500)
    with pytest.raises(errors.UpstreamError):
        client.get_customer_of_project(1)
    assert len(httpserver.log) == 1


def test_it_gives_up_on_a_hung_upstream_within_its_budget(httpserver):
    release = threading.Event()

    def hang(request):
        release.wait(5)
        return Response("{}")

    httpserver.expect_request(PATH).respond_with_handler(hang)
    client = SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=0.6)
    started = time.monotonic()
    try:
        with pytest.raises(errors.UpstreamUnavailable) as raised:
            client.get_customer_of_project(1)
    finally:
        release.set()
    assert time.monotonic() - started < 1.5
    # Staff are told it did not answer in time, not that it could not be reached.
    assert type(raised.value) is errors.UpstreamTimedOut
    assert raised.value.detail == "timed out: ConnectionError < MaxRetryError < ReadTimeoutError"


def test_it_gives_up_on_an_answer_that_dribbles_in(httpserver):
    def dribble() -> Iterator[bytes]:
        yield b'{"Customer": {"customerID": 1, "note": "'
        for _ in range(40):
            time.sleep(0.1)
            yield b"x"
        yield b'"}}'

    httpserver.expect_request(PATH).respond_with_response(Response(dribble(), content_type="application/json"))
    client = SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=0.8)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert time.monotonic() - started < 2.0
    # Whether the deadline passed during a read or between two: the same error and words.
    assert type(raised.value) is errors.UpstreamTimedOut
    assert raised.value.detail == "timed out reading the answer"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}{PATH}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_it_gives_up_on_a_server_that_never_answers(silent_server):
    client = SolarProofClient(base_url=silent_server, api_key=KEY, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)
    assert time.monotonic() - started < 1.5


def test_it_reports_connection_refused_as_unavailable():
    client = SolarProofClient(base_url=closed_port_url(PATH), api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamUnavailable
    # The log names each exception down to the cause, never their messages (they quote the URL).
    assert raised.value.detail == "could not connect: ConnectionError < MaxRetryError < NewConnectionError"


def test_it_reports_an_unknown_host_as_unavailable():
    client = SolarProofClient(base_url="http://solarproof.invalid/apidata.php", api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert raised.value.detail == "could not connect: ConnectionError < MaxRetryError < NameResolutionError"


def test_it_goes_through_the_proxy_the_environment_names(httpserver, monkeypatch):
    # The proxy answers for a host that does not exist: only a request sent through it succeeds.
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": 5}})
    client = SolarProofClient(base_url="http://solarproof.invalid/apidata.php", api_key=KEY, timeout=1.0)
    assert client.get_customer_of_project(1).customer_id == 5
    assert httpserver.log[0][0].headers["Host"] == "solarproof.invalid"


def test_it_bypasses_the_proxy_for_hosts_in_no_proxy(httpserver, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", closed_port_url("/"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": 6}})
    client = SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=1.0)
    assert client.get_customer_of_project(1).customer_id == 6


def test_it_keeps_one_connection_alive_across_calls(sandbox_client, sandbox_server):
    for _ in range(3):
        sandbox_client.get_customer_of_project(2143)
    pool = next(iter(sandbox_client._session.adapters["http://"].poolmanager.pools._container.values()))
    assert pool.num_connections == 1


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(getattr(exc, "detail", ""))


@pytest.mark.parametrize("scenario", ["refused", "503", "html", "hang"])
def test_the_api_key_appears_in_no_log_record_or_exception(scenario, httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # the loggers that quote URLs
    if scenario == "refused":
        url = closed_port_url(PATH)
    else:
        url = httpserver.url_for(PATH)
        if scenario == "503":
            httpserver.expect_request(PATH).respond_with_data("down", status=503)
        elif scenario == "html":
            httpserver.expect_request(PATH).respond_with_data("<html>oops</html>", status=500)
        else:
            httpserver.expect_request(PATH).respond_with_handler(lambda request: time.sleep(1) or Response("{}"))
    client = SolarProofClient(base_url=url, api_key=KEY, timeout=0.5)

    with pytest.raises(errors.SolarProofError) as raised:
        client.get_customer_of_project(1)

    assert KEY not in _all_text(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__
    assert KEY not in repr(client)
    # werkzeug's lines are the fake upstream's own access log, not the portal's.
    messages = [record.getMessage() for record in caplog.records if record.name != "werkzeug"]
    assert messages, "the scenario should have produced log records to check"
    assert not [message for message in messages if KEY in message]


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """Answers the first request on a connection, then closes that connection when the
    next request arrives on it, as a server does with an idle keep-alive connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    answered: list[int] = []
    stop = threading.Event()
    body = json.dumps({"Customer": {"customerID": 7}}).encode()
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            answered.append(1)
            conn.sendall(reply)
            conn.recv(65536)  # the reused connection's next request: dropped unanswered

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}{PATH}", answered
    stop.set()
    thread.join()
    listener.close()


def test_it_retries_when_a_kept_alive_connection_was_dropped(dropping_server):
    url, answered = dropping_server
    client = SolarProofClient(base_url=url, api_key=KEY, timeout=2.0)
    assert client.get_customer_of_project(1).customer_id == 7
    assert client.get_customer_of_project(1).customer_id == 7  # on a fresh connection, after the drop
    assert len(answered) == 2


def _read_head(conn: socket.socket) -> bytes | None:
    """A request's head, read up to its blank line; None when the client closed first."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(65536)
        if not data:
            return None
        head += data
    return head


class LoopbackServer:
    """A raw server on loopback: each connection it accepts is served by ``_serve`` in a
    thread of its own, until ``stop()``."""

    scheme = "http"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()
        self.url = f"{self.scheme}://127.0.0.1:{self._listener.getsockname()[1]}{PATH}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._connected()
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _connected(self) -> None:
        """A connection accepted, before anything is read from it (a TLS handshake included)."""

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()


class CountingServer(LoopbackServer):
    """A raw HTTP server on loopback that counts each request the moment its head has
    arrived (before any answer), then answers as the test says: ``answer(conn)``. With
    ``tls`` (a server context), HTTPS."""

    def __init__(self, answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self._tls = tls
        self._count = 0
        self.lock = threading.Lock()
        self.scheme = "https" if tls else "http"
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self._tls:
                conn = self._tls.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()
            return
        with conn:
            head = b""
            try:
                while not self._stop.is_set():
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(65536)
                        if not data:
                            return
                        head += data
                    head = head.split(b"\r\n\r\n", 1)[1]
                    with self.lock:
                        self._count += 1
                    if not self.answer(conn, self._stop):
                        return
            except OSError:
                return

    def requests_seen(self, *, settle: float = 0.5) -> int:
        """The count once any request already on its way has arrived and been counted."""
        time.sleep(settle)
        with self.lock:
            return self._count


@pytest.fixture
def counting_server() -> Iterator[Callable[..., CountingServer]]:
    servers: list[CountingServer] = []

    def start(answer, **options) -> CountingServer:
        servers.append(CountingServer(answer, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _never_answer(conn: socket.socket, stop: threading.Event) -> bool:
    stop.wait(5)
    return False


def _slow_503(delay: float):
    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        if stop.wait(delay):
            return False
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\ndown")
        return True  # keep-alive: a retry may come on the same connection

    return answer


def test_it_never_repeats_a_read_that_timed_out(counting_server):
    server = counting_server(_never_answer)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=1.0)
    started = time.monotonic()

    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)

    assert time.monotonic() - started < 1.25
    assert server.requests_seen() == 1


def test_slow_503s_never_outlive_the_budget(counting_server):
    # Each 503 takes 1.2 s: once fresh timeouts per attempt made a 2 s lookup take ~4 s.
    server = counting_server(_slow_503(1.2))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    started = time.monotonic()

    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)

    assert time.monotonic() - started < 2.25
    assert server.requests_seen() == 2  # the retry got what was left, 0.8 s, and no more


def test_no_retry_starts_when_too_little_of_the_budget_is_left(counting_server):
    server = counting_server(_slow_503(1.7))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    started = time.monotonic()

    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)

    assert time.monotonic() - started < 1.9  # the 503 is the answer: no 0.3 s attempt after it
    assert server.requests_seen() == 1


def test_a_body_that_stalls_after_late_headers_waits_only_for_what_is_left(counting_server):
    def late_headers_then_nothing(conn: socket.socket, stop: threading.Event) -> bool:
        if stop.wait(0.5):
            return False
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
        stop.wait(5)
        return False

    server = counting_server(late_headers_then_nothing)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=1.0)
    started = time.monotonic()

    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)

    assert time.monotonic() - started < 1.2  # what was left after the headers, not a fresh read timeout
    assert server.requests_seen() == 1


def _headers_dripped(every: float, all_sent: threading.Event):
    """A status line and headers one byte each ``every`` seconds (200 bytes: 10 s at 50 ms), then
    a customer: each read gets its byte well within any socket timeout."""
    body = json.dumps({"Customer": {"customerID": 18}}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    head += b"X-Padding: %s\r\n\r\n" % (b"." * (185 - len(head)))

    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        for byte in head:
            if stop.wait(every):
                return False
            conn.sendall(bytes([byte]))
        all_sent.set()
        conn.sendall(body)
        return False

    return answer


def test_headers_that_drip_in_are_cut_off_at_the_deadline_as_not_answering_in_time(counting_server, caplog):
    caplog.set_level(logging.DEBUG)
    headers_sent = threading.Event()
    server = counting_server(_in_turn(_headers_dripped(0.05, headers_sent), _customer(19)))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    threads_before = set(threading.enumerate())
    started = time.monotonic()

    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)

    took = time.monotonic() - started
    assert not headers_sent.is_set()  # ended while they were still coming, 8 s before the last byte
    assert took < 3.5
    assert type(raised.value) is errors.UpstreamTimedOut
    assert raised.value.detail == "timed out: ConnectionError < MaxRetryError < ReadTimeoutError"
    assert server.requests_seen() == 1  # never tried again after the deadline
    assert set(threading.enumerate()) - threads_before - set(server._threads) == set()  # no watchdog left
    pool = next(iter(client._session.adapters["http://"].poolmanager.pools._container.values()))
    assert [conn for conn in pool.pool.queue if conn is not None] == []  # the cut connection is not kept
    assert KEY not in _all_text(raised.value)
    assert not [record for record in caplog.records if KEY in record.getMessage()]
    assert client.get_customer_of_project(1).customer_id == 19


@pytest.mark.parametrize(
    ("route", "detail"),
    [
        pytest.param("https", "timed out: ConnectionError < MaxRetryError < ReadTimeoutError", id="https"),
        # urllib3 takes a connection closed mid-answer for one that never reached the proxy.
        pytest.param("proxy", "timed out: ProxyError < MaxRetryError < ProxyError < ReadTimeoutError", id="proxy"),
    ],
)
def test_headers_that_drip_in_are_cut_off_at_the_deadline_over_https_and_through_a_proxy(
    route, detail, counting_server, loopback_tls, plain_environment, monkeypatch
):
    headers_sent = threading.Event()
    if route == "https":
        server = counting_server(_headers_dripped(0.05, headers_sent), tls=loopback_tls[1])
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(loopback_tls[0]))
        url = server.url
    else:  # an HTTP proxy that drips the headers it forwards
        server = counting_server(_headers_dripped(0.05, headers_sent))
        monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix(PATH))
        url = f"http://solarproof.invalid{PATH}"
    client = SolarProofClient(base_url=url, api_key=KEY, timeout=1.0)

    with pytest.raises(errors.UpstreamTimedOut) as raised:
        client.get_customer_of_project(1)

    assert not headers_sent.is_set()
    assert raised.value.detail == detail
    assert server.requests_seen() == 1


def test_it_returns_every_field_of_a_business_customer(sandbox_client):
    assert sandbox_client.get_customer_of_project(2144) == Customer(
        customer_id=72144,
        first_name="Marcus",
        surname="Aurelio",
        phone1="(07) 3123 4567",
        phone2="13 11 14",
        email="accounts@aurelio-nurseries.example.com",
        company_name="Aurelio Nurseries Pty Ltd",
        company_phone="1800 555 010",
        abn="51824753556",
        gst_registered=True,
        site_address="480 Mount Cotton Road, Capalaba, QLD, 4157",
        note="Site contact: Dee (operations).\nLoading dock at rear; sign in at the office.",
        contact_time="Weekdays 7am-3pm",
    )


def test_it_reads_each_field_whatever_the_case_of_its_name(client, httpserver):
    body = {
        "CUSTOMER": {
            "CUSTOMERID": 3,
            "UID": "sp-000003",
            "Phone2": "02 9999 0000",
            "CustomerABN": "51 824 753 556",
            "ContactTime": "Mornings",
            "SiteAddress": "1 Example St",
        }
    }
    httpserver.expect_request(PATH).respond_with_json(body)
    assert client.get_customer_of_project(1) == Customer(
        customer_id=3,
        uid="sp-000003",
        phone2="02 9999 0000",
        abn="51 824 753 556",
        contact_time="Mornings",
        site_address="1 Example St",
    )


def test_single_line_fields_are_tidied_and_the_note_keeps_its_lines(client, httpserver):
    body = {
        "Customer": {
            "customerID": 4,
            "firstName": "Ann\x00\x07\x1b",
            "surname": True,
            "companyName": False,
            "siteAddress": "12 Main St\r\n  Brisbane\tQLD",
            "note": "one\rtwo\r\nthree\x1b",
            "email": "a" * (solarproof.MAX_FIELD_CHARS + 5),
        }
    }
    httpserver.expect_request(PATH).respond_with_json(body)
    customer = client.get_customer_of_project(1)
    assert (customer.first_name, customer.surname, customer.company_name) == ("Ann", "", "")
    assert customer.site_address == "12 Main St Brisbane QLD"
    assert customer.note == "one\ntwo\nthree"
    assert customer.email == "a" * solarproof.MAX_FIELD_CHARS


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (0.0, False),
        ("1", True),
        (" Yes ", True),
        ("Y", True),
        ("y", True),
        ("TRUE", True),
        ("true", True),
        ("0", False),
        ("N", False),
        ("n", False),
        ("no", False),
        ("NO", False),
        ("FALSE", False),
        ("false", False),
        ("maybe", None),
        ("", None),
        (None, None),
        ([], None),
    ],
)
def test_gst_registration_is_read_from_each_of_phps_spellings(client, httpserver, value, shown):
    """Yes, no, or unknown (shown as such): never a guess from an unrecognised value."""
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": 1, "gstRegistered": value}})
    assert client.get_customer_of_project(1).gst_registered is shown


@pytest.mark.parametrize(
    ("status", "body", "error", "detail"),
    [
        (502, b"<html>Bad gateway</html>", errors.UpstreamSaysUnavailable, "HTTP 502 without a JSON body"),
        (503, b"<html>Down</html>", errors.UpstreamSaysUnavailable, "HTTP 503 without a JSON body"),
        (504, b"<html>Gateway timeout</html>", errors.UpstreamSaysUnavailable, "HTTP 504 without a JSON body"),
        (502, b'{"message": "down"}', errors.UpstreamSaysUnavailable, "HTTP 502"),
        (503, b'{"message": "down"}', errors.UpstreamSaysUnavailable, "HTTP 503"),
        (504, b'{"message": "down"}', errors.UpstreamSaysUnavailable, "HTTP 504"),
        (500, b"<html>Fatal error</html>", errors.UpstreamError, "HTTP 500 without a usable JSON body"),
        (505, b"<html>?</html>", errors.UpstreamError, "HTTP 505 without a usable JSON body"),
        (500, b'{"message": "?"}', errors.UpstreamError, "HTTP 500, neither a customer nor an error code"),
        (505, b'{"message": "?"}', errors.UpstreamError, "HTTP 505, neither a customer nor an error code"),
    ],
)
def test_a_gateway_error_says_solar_proof_cannot_serve_now_and_other_errors_say_try_again(
    client, httpserver, status, body, error, detail
):
    httpserver.expect_request(PATH).respond_with_data(body, status=status)
    with pytest.raises(errors.SolarProofError) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is error
    assert str(raised.value) == error.advice
    assert raised.value.detail == detail


def test_it_accepts_an_answer_exactly_at_the_limit_with_a_content_length(client, httpserver):
    body = _body_of_exactly(solarproof.MAX_BODY_BYTES)
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    assert client.get_customer_of_project(1).customer_id == 1
    assert httpserver.log[0][1].headers["Content-Length"] == str(solarproof.MAX_BODY_BYTES)


def test_it_accepts_a_compressed_answer(client, httpserver):
    body = gzip.compress(json.dumps({"Customer": {"customerID": 8, "firstName": "Judy"}}).encode())
    httpserver.expect_request(PATH).respond_with_data(
        body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert client.get_customer_of_project(1) == Customer(customer_id=8, first_name="Judy")


def test_it_refuses_an_answer_that_decompresses_beyond_the_limit(client, httpserver):
    """A few kilobytes on the wire, over the limit once decompressed: the limit is on what we keep."""
    body = gzip.compress(_body_of_exactly(solarproof.MAX_BODY_BYTES * 4))
    assert len(body) < solarproof.MAX_BODY_BYTES // 100
    httpserver.expect_request(PATH).respond_with_data(
        body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(errors.UpstreamError) as raised:
        client.get_customer_of_project(1)
    assert raised.value.detail == "body too large"


def _headers_then(rest: bytes, *, then_close: bool):
    """Headers at once declaring a 40-byte body, then ``rest`` of it, then the connection is
    closed (``then_close``) or held open with nothing more."""

    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" + rest)
        if not then_close:
            stop.wait(5)
        return False

    return answer


def test_an_answer_cut_short_is_reported_as_a_broken_connection(counting_server):
    server = counting_server(_headers_then(b'{"Customer"', then_close=True))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamUnavailable
    assert raised.value.detail == "connection broke reading the answer: ProtocolError"


def test_an_answer_that_stops_coming_is_reported_as_not_answering_in_time(counting_server):
    server = counting_server(_headers_then(b'{"Customer"', then_close=False))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamTimedOut
    assert str(raised.value) == errors.UpstreamTimedOut.advice
    assert raised.value.detail == "timed out reading the answer"


def test_urllib3s_retry_lines_keep_their_words_with_the_key_redacted(caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    client = SolarProofClient(base_url=closed_port_url(PATH), api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)
    retries = [record.getMessage() for record in caplog.records if record.name == "urllib3.util.retry"]
    assert retries, "a refused connection is retried"
    url = "/apidata.php?action=getcustomerofproject&project_id=1&api_key=[redacted]"
    assert all(message.startswith(f"Incremented Retry for (url='{url}')") for message in retries), retries


@pytest.mark.parametrize("logger", ["urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection", "requests"])
def test_the_key_is_redacted_wherever_a_library_log_line_quotes_it(logger, caplog):
    # A key no other client was given: it is redacted only because this client registered it.
    key = f"key-of-its-own-{secrets.token_hex(8)}"
    SolarProofClient(base_url="http://127.0.0.1:9/", api_key=key, timeout=1.0)  # the key is now a secret
    caplog.set_level(logging.DEBUG, logger=logger)
    logging.getLogger(logger).warning("connection to %s failed (%s)", f"http://proxy/{key}/x", "reset")
    assert [record.getMessage() for record in caplog.records] == [
        "connection to http://proxy/[redacted]/x failed (reset)"
    ]


def test_a_connection_dropped_late_is_not_tried_again_without_time_for_an_answer(counting_server):
    def drop_after(conn: socket.socket, stop: threading.Event) -> bool:
        stop.wait(1.6)
        return False  # closed without an answer

    server = counting_server(drop_after)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert server.requests_seen() == 1  # 0.4 s left: less than the 0.5 s an attempt needs
    assert raised.value.detail == "could not connect: ConnectionError < MaxRetryError < ProtocolError"


def test_a_connection_dropped_without_an_answer_is_tried_once_more_only(counting_server):
    server = counting_server(lambda conn, stop: False)  # closed as soon as the request arrives
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamUnavailable):
        client.get_customer_of_project(1)
    assert server.requests_seen() == 2


def test_a_retry_after_header_is_not_waited_for(httpserver):
    """Solar Proof's Retry-After would hold the lookup past its budget: retries keep their own pace."""
    httpserver.expect_request(PATH).respond_with_data("down", status=503, headers={"Retry-After": "3"})
    client = SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamSaysUnavailable):
        client.get_customer_of_project(1)
    assert len(httpserver.log) == 3  # the first try and two retries, none of them 3 s apart


# --- Over HTTPS: the https:// mount and the CA bundle the environment names ---------------

_NO_ENVIRONMENT = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NETRC",
)


@pytest.fixture
def plain_environment(monkeypatch) -> None:
    """No CA bundle, proxy or netrc variable: each test sets the one it is about."""
    for name in _NO_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def loopback_tls(tmp_path_factory) -> tuple[Path, ssl.SSLContext]:
    """A certificate authority of the tests' own (its PEM file, for a CA bundle variable) and a
    server context with a certificate it signed for 127.0.0.1. No system store trusts it."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(hours=1), "not_valid_after": now + datetime.timedelta(days=1)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(subject_name=_name("Solar Proof client tests CA"), **valid)
        .issuer_name(_name("Solar Proof client tests CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder(subject_name=_name("127.0.0.1"), **valid)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle = folder / "ca.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain, private = folder / "server.pem", folder / "server.key"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, private)
    return bundle, context


@pytest.fixture
def https_server(loopback_tls) -> Iterator[HTTPServer]:
    """pytest-httpserver over TLS, with the certificate of the tests' own CA."""
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=loopback_tls[1])
    server.start()
    yield server
    server.clear()
    server.stop()


def test_https_is_verified_against_requests_ca_bundle_and_retried_as_http_is(
    https_server, loopback_tls, plain_environment, monkeypatch
):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(loopback_tls[0]))
    https_server.expect_ordered_request(PATH).respond_with_data("bad gateway", status=502)
    https_server.expect_ordered_request(PATH).respond_with_json({"Customer": {"customerID": 11}})
    client = SolarProofClient(base_url=https_server.url_for(PATH), api_key=KEY, timeout=4.0)
    assert client.base_url.startswith("https://127.0.0.1:")

    assert client.get_customer_of_project(1).customer_id == 11
    assert len(https_server.log) == 2  # the 502 was tried again: https:// has the client's retries too


def test_curl_ca_bundle_is_the_ca_bundle_when_requests_ca_bundle_is_unset(
    https_server, loopback_tls, plain_environment, monkeypatch
):
    monkeypatch.setenv("CURL_CA_BUNDLE", str(loopback_tls[0]))
    https_server.expect_request(PATH).respond_with_json({"Customer": {"customerID": 12}})
    client = SolarProofClient(base_url=https_server.url_for(PATH), api_key=KEY, timeout=4.0)
    assert client.get_customer_of_project(1).customer_id == 12


class TlsServer(LoopbackServer):
    """A TLS server on loopback that counts the connections made to it (each one a handshake
    begun) and answers a customer over any handshake that succeeds."""

    scheme = "https"

    def __init__(self, context: ssl.SSLContext) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self._context = context
        super().__init__()

    def _connected(self) -> None:
        self.connections += 1  # before the handshake: the client cannot fail it any earlier

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                head = _read_head(tls)
                if head is None:
                    return
                self.requests.append(head)
                body = json.dumps({"Customer": {"customerID": 666}}).encode()
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                tls.sendall(body)
        except OSError:  # the client refused the certificate (ssl.SSLError is an OSError)
            conn.close()


@pytest.fixture
def tls_server(loopback_tls) -> Iterator[TlsServer]:
    server = TlsServer(loopback_tls[1])
    yield server
    server.stop()


def test_a_certificate_no_ca_bundle_vouches_for_is_refused_at_once_and_never_sent_the_key(
    tls_server, plain_environment
):
    client = SolarProofClient(base_url=tls_server.url, api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamUnavailable
    assert raised.value.detail == "could not connect: SSLError < MaxRetryError < SSLError < SSLCertVerificationError"
    assert tls_server.requests == []  # no request (and so no key) went over the unverified connection
    assert tls_server.connections == 1  # a certificate that failed verification fails again: no retry


# --- Connection attempts that hang: a host that does not accept -----------------------------


class UnacceptingHost:
    """A listening socket whose accept queue (backlog 0) already holds one connection nobody
    accepted: Linux drops every further SYN, so a connect hangs, as it does to a host behind a
    firewall that drops packets. ``accept_from_now()`` takes that connection off the queue (the
    next connect gets in at once, or at the SYN's retransmission) and answers a customer."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self._listener.settimeout(2)
        address = self._listener.getsockname()
        self.url = f"http://127.0.0.1:{address[1]}{PATH}"
        self._queued = socket.create_connection(address, timeout=2)
        self._accepted: list[socket.socket] = []
        self._accepting = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.2)
        try:
            probe.connect(address)
        except TimeoutError:
            pass
        else:
            pytest.fail("a connect to a full accept queue should hang on this machine")
        finally:
            probe.close()

    def accept_from_now(self) -> None:
        if not self._accepting.is_set():
            self._accepted.append(self._listener.accept()[0])  # the queued one: there is room now
            self._accepting.set()

    def _accept(self) -> None:
        self._accepting.wait()
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._accepted.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            if _read_head(conn) is None:
                return
            body = json.dumps({"Customer": {"customerID": 13}}).encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )

    def stop(self) -> None:
        self._stop.set()
        self._accepting.set()
        for thread in self._threads:
            thread.join(5)
        for conn in [self._queued, *self._accepted]:
            conn.close()
        self._listener.close()


@pytest.fixture
def unaccepting_host() -> Iterator[UnacceptingHost]:
    host = UnacceptingHost()
    yield host
    host.stop()


def test_a_host_that_never_accepts_the_connection_is_reported_as_not_answering_in_time(unaccepting_host):
    client = SolarProofClient(base_url=unaccepting_host.url, api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamTimedOut
    assert str(raised.value) == errors.UpstreamTimedOut.advice
    assert raised.value.detail == "timed out"


class _CallOnRecord(logging.Handler):
    """Keeps each record's message and calls ``action`` as it is logged, in the logging thread."""

    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.action = action
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.action()


@pytest.mark.parametrize(
    ("timeout", "connect"),
    [(None, 2.0), (16.0, 3.0)],
    ids=["the production budget of 8 s: a quarter", "a 16 s budget: at most 3 s"],
)
def test_a_connection_attempt_that_hangs_gets_a_quarter_of_the_budget_then_is_tried_again(
    unaccepting_host, caplog, timeout, connect
):
    """What an operator sees of a host that does not accept: urllib3's warning names the
    connect timeout, and the lookup still has time for a second attempt and its answer."""
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    # The moment urllib3 logs the retry, before the retry connects, the host starts accepting.
    warnings = _CallOnRecord(unaccepting_host.accept_from_now)
    logging.getLogger("urllib3.connectionpool").addHandler(warnings)
    try:
        if timeout is None:
            client = SolarProofClient(base_url=unaccepting_host.url, api_key=KEY)
        else:
            client = SolarProofClient(base_url=unaccepting_host.url, api_key=KEY, timeout=timeout)
        started = time.monotonic()
        customer = client.get_customer_of_project(1)
        elapsed = time.monotonic() - started
    finally:
        logging.getLogger("urllib3.connectionpool").removeHandler(warnings)

    assert customer.customer_id == 13
    assert len(warnings.messages) == 1, warnings.messages
    assert warnings.messages[0].startswith("Retrying (")
    assert f"Connection to 127.0.0.1 timed out. (connect timeout={connect})" in warnings.messages[0]
    assert elapsed >= connect


# --- What is not a timeout or a connection error; credentials; limits and back-off ---------


def test_a_url_requests_refuses_is_reported_as_unavailable_by_the_refusals_class(plain_environment):
    # SOLARPROOF_API_URL's check lets this typo through (a host starting with a dot); requests
    # refuses the URL before any connection. The log names the class: the message quotes the URL.
    client = SolarProofClient(base_url="https://.solarproof.com.au/apidata.php", api_key=KEY, timeout=1.0)
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        client.get_customer_of_project(1)
    assert type(raised.value) is errors.UpstreamUnavailable
    assert str(raised.value) == errors.UpstreamUnavailable.advice
    assert raised.value.detail == "request failed: InvalidURL"
    assert KEY not in _all_text(raised.value)


def test_credentials_in_a_netrc_file_are_never_sent_to_solar_proof(
    httpserver, tmp_path, monkeypatch, plain_environment
):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {httpserver.host} login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    httpserver.expect_request(PATH).respond_with_json({"Customer": {"customerID": 14}})
    client = SolarProofClient(base_url=httpserver.url_for(PATH), api_key=KEY, timeout=2.0)

    assert client.get_customer_of_project(1).customer_id == 14
    assert "Authorization" not in httpserver.log[0][0].headers


def _in_turn(*answers):
    """Answers each request with the next of ``answers``, the last one again once they run out."""
    lock = threading.Lock()
    turn = [0]

    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        with lock:
            index = min(turn[0], len(answers) - 1)
            turn[0] += 1
        return answers[index](conn, stop)

    return answer


def _customer(customer_id: int):
    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        body = json.dumps({"Customer": {"customerID": customer_id}}).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        return True

    return answer


def _drop(conn: socket.socket, stop: threading.Event) -> bool:
    return False  # closed without an answer


def _503_then_close(conn: socket.socket, stop: threading.Event) -> bool:
    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown")
    return False


def test_a_dropped_connection_and_bad_gateways_share_the_two_retries(counting_server):
    server = counting_server(_in_turn(_drop, _503_then_close))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=4.0)
    with pytest.raises(errors.UpstreamSaysUnavailable) as raised:
        client.get_customer_of_project(1)
    assert raised.value.detail == "HTTP 503 without a JSON body"
    assert server.requests_seen() == 3  # the first try and two retries in all, not two of each kind


def test_a_short_budget_retries_a_bad_gateway_but_not_after_a_back_off_it_has_no_time_for(counting_server):
    server = counting_server(_503_then_close)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=0.5)
    with pytest.raises(errors.UpstreamSaysUnavailable):
        client.get_customer_of_project(1)
    # The first retry at once (an eighth of a second is left, the least an attempt needs
    # here); the second would start after 0.4 s of back-off, with less than that left.
    assert server.requests_seen() == 2


def test_the_second_retry_waits_its_back_off_and_starts_only_with_time_left_after_it(counting_server):
    arrivals: list[float] = []

    def answer(conn: socket.socket, stop: threading.Event) -> bool:
        arrivals.append(time.monotonic())
        return _503_then_close(conn, stop)

    server = counting_server(answer)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=1.3)
    with pytest.raises(errors.UpstreamSaysUnavailable):
        client.get_customer_of_project(1)
    # 0.4 s of back-off leaves about 0.9 s of 1.3, enough; a back-off of a second would not.
    assert server.requests_seen() == 3
    assert arrivals[2] - arrivals[1] >= 0.4


def test_a_slow_gateway_error_is_tried_again_while_half_a_second_is_left_for_the_answer(counting_server):
    # The production rule for budgets above 2 s: a retry needs 0.5 s left, whatever the budget.
    server = counting_server(_in_turn(_slow_503(4.6), _customer(15)))
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=6.0)
    assert client.get_customer_of_project(1).customer_id == 15
    assert server.requests_seen(settle=0) == 2


def test_with_a_2_s_budget_no_retry_starts_with_less_than_half_a_second_left(counting_server):
    server = counting_server(_slow_503(1.51))  # answered when 0.49 s or less is left
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=2.0)
    with pytest.raises(errors.UpstreamSaysUnavailable):
        client.get_customer_of_project(1)
    assert server.requests_seen() == 1


def test_thirty_three_lookups_at_once_keep_thirty_two_connections_for_the_next(counting_server, caplog):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    at_once = 33
    arrived = threading.Condition()
    waiting = [0]

    def all_at_once(conn: socket.socket, stop: threading.Event) -> bool:
        with arrived:  # every request is held until all have arrived: 33 connections in use
            waiting[0] += 1
            arrived.notify_all()
            arrived.wait_for(lambda: waiting[0] >= at_once or stop.is_set(), timeout=15)
        return _customer(16)(conn, stop)

    server = counting_server(all_at_once)
    client = SolarProofClient(base_url=server.url, api_key=KEY, timeout=20.0)
    found: list[int] = []

    def lookup() -> None:
        found.append(client.get_customer_of_project(1).customer_id)

    threads = [threading.Thread(target=lookup) for _ in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert found == [16] * at_once
    assert waiting[0] == at_once
    # The pool keeps 32 connections alive; the one beyond them is closed, and urllib3 says so.
    assert [record.getMessage() for record in caplog.records if record.name == "urllib3.connectionpool"] == [
        "Connection pool is full, discarding connection: 127.0.0.1. Connection pool size: 32"
    ]


def test_urllib3s_debug_lines_count_down_the_retries_left_for_each_bad_gateway(client, httpserver, caplog):
    """At DEBUG, each retry's line shows what is left of each limit: the only place an operator
    sees that a bad gateway used up one of the two retries for bad gateways."""
    caplog.set_level(logging.DEBUG, logger="urllib3.util.retry")
    httpserver.expect_request(PATH).respond_with_data("down", status=503)
    with pytest.raises(errors.UpstreamSaysUnavailable):
        client.get_customer_of_project(1)
    left = [record.getMessage().split("): ", 1)[1] for record in caplog.records if record.name == "urllib3.util.retry"]
    assert left == [
        "_Retry(total=1, connect=2, read=1, redirect=None, status=1)",
        "_Retry(total=0, connect=2, read=1, redirect=None, status=0)",
    ]


class _AnswersOnceThenAcceptsNoMore:
    """Answers the first connection with a 503 after ``delay`` seconds, and from then on its
    accept queue (backlog 0) is full: the retry's connect hangs, as to a host gone behind a
    firewall that drops packets."""

    def __init__(self, delay: float) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self._listener.settimeout(10)
        self.address = self._listener.getsockname()
        self.url = f"http://127.0.0.1:{self.address[1]}{PATH}"
        self.delay = delay
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._answer_once, daemon=True)
        self._thread.start()

    def _answer_once(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._listener.accept()
            self._sockets.append(conn)
            self._sockets.append(socket.create_connection(self.address, timeout=2))  # fills the queue
            conn.settimeout(10)
            if _read_head(conn) is None:
                return
            time.sleep(self.delay)
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()

    def stop(self) -> None:
        self._thread.join(15)
        for sock in [*self._sockets, self._listener]:
            sock.close()


def test_a_retry_begun_late_connects_only_for_what_is_left_of_the_budget():
    """The production budget of 8 s: a 503 at 7 s leaves time for one more attempt, whose
    connect would be allowed 2 s on its own. It gets the 1 s left, not a second past the budget."""
    server = _AnswersOnceThenAcceptsNoMore(delay=7.0)
    try:
        client = SolarProofClient(base_url=server.url, api_key=KEY)
        started = time.monotonic()
        with pytest.raises(errors.UpstreamUnavailable) as raised:
            client.get_customer_of_project(1)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert type(raised.value) is errors.UpstreamTimedOut
    assert 7.0 <= elapsed < 8.6  # its own 2 s would have ended at 9
