"""The Solar Proof API client: the only code in the portal that speaks to Solar Proof.

It knows HTTP and the contract in ``get-customer-of-project.txt``, nothing of Django
requests or users. It returns our own ``Customer`` or raises a ``SolarProofError``
whose message is safe to show staff. The API key travels in the query string, so it
is scrubbed from everything this module lets out: exceptions (raised ``from None``),
and urllib3's own log records.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError
from urllib3.poolmanager import PoolManager
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from customers.upstream.errors import (
    ERROR_CODES,
    NoCustomerAssigned,
    SolarProofError,
    UpstreamError,
    UpstreamSaysUnavailable,
    UpstreamTimedOut,
    UpstreamUnavailable,
)

logger = logging.getLogger(__name__)

ACTION = "getcustomerofproject"
MAX_BODY_BYTES = 256 * 1024
# Longest single field we keep: a note or address longer than this is not a note.
MAX_FIELD_CHARS = 2000
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Customer:
    """A Solar Proof customer in our own spelling. Strings are never None: empty means
    the field was missing, null or blank upstream. Nothing here is validated for
    display: that is the presentation layer's job."""

    customer_id: int
    first_name: str = ""
    surname: str = ""
    phone1: str = ""
    phone2: str = ""
    email: str = ""
    company_name: str = ""
    company_phone: str = ""
    abn: str = ""
    gst_registered: bool | None = None
    site_address: str = ""
    note: str = ""
    contact_time: str = ""
    uid: str = ""

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.surname) if part)


class _RedactingFilter(logging.Filter):
    """urllib3 puts the full URL, query string and all, into its retry warnings and
    debug lines. Rewrite those records before any handler sees them."""

    _api_key_param = re.compile(r"(api_key=)[^&\s'\"]*", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add_secret(self, secret: str) -> None:
        if secret:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        text = self._api_key_param.sub(r"\1[redacted]", text)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_redactor = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection", "requests"):
    logging.getLogger(_name).addFilter(_redactor)


# The deadline of the lookup this thread is making, and the least time worth starting
# another attempt with. Retry objects are shared by every thread; the deadline is not.
_budget: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("budget", default=None)
_SHORTEST_TIMEOUT = 0.01


class _Deadline(Timeout):
    """One time budget for every attempt. urllib3 clones the timeout at the start of each
    attempt, retries included; this clone gives the attempt what is left of the deadline
    (connect, then read, out of that) instead of a fresh allowance."""

    def __init__(self, *, deadline: float, connect: float) -> None:
        self.deadline = deadline
        super().__init__(connect=connect, total=max(deadline - time.monotonic(), _SHORTEST_TIMEOUT))

    def clone(self) -> _Deadline:
        return _Deadline(deadline=self.deadline, connect=self._connect)  # type: ignore[arg-type]


class _Retry(Retry):
    """urllib3's Retry, except that no retry starts without time for it: not after a read
    that timed out (it spent the budget), and not when what is left of the deadline, after
    the back-off, is too short for an answer. A connection the server dropped (an idle
    keep-alive closed as we reused it) is still retried while there is time."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # type: ignore[no-untyped-def]
        if isinstance(error, ReadTimeoutError):
            raise MaxRetryError(_pool, url, error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        budget = _budget.get()
        if budget is not None:
            deadline, shortest_attempt = budget
            if deadline - time.monotonic() - retry.get_backoff_time() < shortest_attempt:
                # With a response (a 503), urlopen hands that response back: it is the answer.
                raise MaxRetryError(_pool, url, error or ResponseError("no time left for a retry"))
        return retry


class _Watchdog:
    """Shuts a socket down at the deadline unless stopped first, so that a read blocked on it
    ends at once: how urllib3's own ``HTTPResponse.shutdown()`` interrupts one from another
    thread."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.fired = False
        self._sock = sock
        self._timer = threading.Timer(deadline - time.monotonic(), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):  # the server may have closed it meanwhile
            self._sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> bool:
        """Whether it fired. Once this returns, it will not, and its thread is gone."""
        self._timer.cancel()
        self._timer.join()
        return self.fired


class _HeadersByTheDeadline:
    """http.client reads the status line and headers with the socket's timeout for each
    read, so a server that sends them a byte at a time never times out. Until they are in,
    a watchdog cuts the connection at the deadline; the body's reads check it themselves."""

    def getresponse(self) -> HTTPResponse:
        budget = _budget.get()
        if budget is None:
            return super().getresponse()  # type: ignore[misc]
        watchdog = _Watchdog(self.sock, deadline=budget[0])  # type: ignore[attr-defined]
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            # However the cut connection ended the read (no status, a broken header, even
            # a response), it is the socket's timeout urllib3 knows: never retried, and the
            # connection is closed, not pooled.
            if watchdog.stop():
                raise TimeoutError("no headers by the deadline")


class _HTTPConnection(_HeadersByTheDeadline, HTTPConnection):
    pass


class _HTTPSConnection(_HeadersByTheDeadline, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with the connections above, straight to Solar Proof or through an
    HTTP proxy (a SOCKS proxy's pools are classes of their own)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


def _new_session(base_url: str, retries: int) -> requests.Session:
    retry = _Retry(
        total=retries,
        connect=retries,
        read=1,
        status=retries,
        other=0,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        backoff_factor=0.2,
        backoff_max=1.0,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = _Adapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "solarproof-staff-portal/1"})
    # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once, here, for
    # this one upstream: requests would otherwise scan every variable on every call (a
    # quarter of the client's CPU per lookup). Credentials never come from ~/.netrc: the
    # API key is the only credential.
    session.proxies = requests.utils.get_environ_proxies(base_url)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


class SolarProofClient:
    """One per process: it holds a pooled, keep-alive ``requests.Session``.

    ``timeout`` is the budget for a whole call, retries and body included, so that a
    hung or dribbling upstream cannot hold a worker much longer than that.
    """

    def __init__(self, *, base_url: str, api_key: str, timeout: float = 8.0, retries: int = 2) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        _redactor.add_secret(api_key)
        self._session = _new_session(base_url, retries)
        # Connection attempts are fast or hopeless; keep most of the budget for the answer.
        self._connect_timeout = min(3.0, timeout / 4)
        # A retry that cannot get an answer in time only holds the worker longer.
        self._shortest_attempt = min(0.5, timeout / 4)

    def __repr__(self) -> str:
        return f"SolarProofClient(base_url={self.base_url!r})"

    def get_customer_of_project(self, project_id: int) -> Customer:
        deadline = time.monotonic() + self.timeout
        params = {"action": ACTION, "project_id": str(project_id), "api_key": self._api_key}
        budget = _budget.set((deadline, self._shortest_attempt))
        try:
            response = self._session.get(
                self.base_url,
                params=params,
                timeout=_Deadline(deadline=deadline, connect=self._connect_timeout),
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise UpstreamTimedOut("timed out") from None
        except requests.ConnectionError as exc:
            cause = _cause(exc)
            if "Timeout" in cause:
                raise UpstreamTimedOut(f"timed out: {cause}") from None
            raise UpstreamUnavailable(f"could not connect: {cause}") from None
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"request failed: {type(exc).__name__}") from None
        finally:
            _budget.reset(budget)
        with response:
            body = self._read_body(response, deadline)
        return _interpret(response.status_code, body)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise UpstreamError("body too large (declared)")
        body = bytearray()
        connection = response.raw.connection
        try:
            while True:
                # Before every read: an answer that keeps dribbling in is cut off here, as
                # one that stalls is by the socket's timeout (the same error, below).
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                # The socket still has the read timeout the headers were given; a stalled
                # body may only wait for what is left of the budget.
                if connection is not None and connection.sock is not None:
                    connection.sock.settimeout(max(remaining, _SHORTEST_TIMEOUT))
                # read1 returns what has arrived, so a slow drip is measured against
                # the deadline rather than waiting to fill a whole chunk.
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return bytes(body)
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise UpstreamError("body too large")
        except SolarProofError:
            raise
        except Exception as exc:  # urllib3 and socket errors while reading the body
            name = type(exc).__name__
            if "Timeout" in name or isinstance(exc, TimeoutError):
                raise UpstreamTimedOut("timed out reading the answer") from None
            raise UpstreamUnavailable(f"connection broke reading the answer: {name}") from None


def _cause(exc: BaseException) -> str:
    """The innermost exception's class name: enough to tell refused from reset in a log,
    and unlike the messages, it cannot carry the URL (and so the key)."""
    names = []
    seen: BaseException | None = exc
    while seen is not None and len(names) < 6:
        names.append(type(seen).__name__)
        reason = getattr(seen, "reason", None)
        if not isinstance(reason, BaseException):  # urllib3's ProxyError keeps its cause here
            reason = getattr(seen, "original_error", None)
        seen = (
            reason
            if isinstance(reason, BaseException)
            else (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
        )
    return " < ".join(names)


def _interpret(status: int, body: bytes) -> Customer:
    """Decide from the body, not the status: Solar Proof has sent errors with 200 and
    customers with odd content types."""
    data = _json_object(body)
    if data is None:
        if status in (502, 503, 504):
            raise UpstreamSaysUnavailable(f"HTTP {status} without a JSON body")
        raise UpstreamError(f"HTTP {status} without a usable JSON body")

    fields = _lower_keys(data)
    if "customer" in fields:
        customer = fields["customer"]
        if isinstance(customer, dict) and customer:
            return _customer(customer)
        if customer in (None, "", [], {}, False):
            raise NoCustomerAssigned("customer field empty")
        raise UpstreamError("customer field is not an object")

    code = fields.get("code", fields.get("error"))
    if isinstance(code, str) and code.strip():
        error = ERROR_CODES.get(code.strip().upper())
        if error is None:
            raise UpstreamError("unknown error code")
        raise error(f"code {code.strip().upper()}")
    if status in (502, 503, 504):
        raise UpstreamSaysUnavailable(f"HTTP {status}")
    raise UpstreamError(f"HTTP {status}, neither a customer nor an error code")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        # PHP endpoints are known to prepend a byte-order mark.
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in data.items()}


def _customer(raw: dict[str, Any]) -> Customer:
    fields = _lower_keys(raw)
    customer_id = _integer(fields.get("customerid"))
    # At most 18 digits, as a string may carry: a 19-digit number overflows the audit
    # log's column, and the customer's details must never go unaudited (or a 500).
    if customer_id is None or not 0 <= customer_id < 10**18:
        raise UpstreamError("customer without a usable customerID")
    return Customer(
        customer_id=customer_id,
        first_name=_text(fields.get("firstname")),
        surname=_text(fields.get("surname")),
        phone1=_text(fields.get("phone1")),
        phone2=_text(fields.get("phone2")),
        email=_text(fields.get("email")),
        company_name=_text(fields.get("companyname")),
        company_phone=_text(fields.get("companyphone")),
        abn=_text(fields.get("customerabn")),
        gst_registered=_flag(fields.get("gstregistered")),
        site_address=_text(fields.get("siteaddress")),
        note=_text(fields.get("note"), keep_lines=True),
        contact_time=_text(fields.get("contacttime")),
        uid=_text(fields.get("uid")),
    )


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,18}\s*", value):
        return int(value)
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value: object, *, keep_lines: bool = False) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return ""
    value = _CONTROL.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
    if not keep_lines:
        value = " ".join(value.split())
    return value.strip()[:MAX_FIELD_CHARS]


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        normal = value.strip().lower()
        if normal in {"1", "true", "yes", "y"}:
            return True
        if normal in {"0", "false", "no", "n"}:
            return False
    return None
