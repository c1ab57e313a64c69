"""pollgate consumer client for Python 3.9+ (standard library only, one module).

Single calls (``poll``, ``ack``, ``consumer``) and two iterators, ``events()`` and
``batches()``, that long-poll for as long as the caller keeps reading. They keep the same
promises as the TypeScript SDK (``src/client/consumer.ts``), in order:

1. At-least-once. A page is acked only after the caller finished every event of it (for
   ``events()``: asked for the event after its last one; for ``batches()``: asked for the next
   page). The ack rides on the next poll as ``ack=`` (the server commits it before it reads), so
   steady-state consumption costs one request per page.
2. A loop body that raises (or breaks) stops everything: nothing more is acked, the exception
   propagates out of the ``for``. The unfinished page comes again on the next run.
3. ``stop`` (a ``threading.Event``) ends the iterator cleanly: it returns, no exception. What
   the body finished is committed with one ``POST /v1/ack`` on the way out, never an event it
   has not seen. A held poll is cut at once (within a fraction of a second), not waited out.
4. No answer, 5xx, 429, 408: retried with exponential backoff and full jitter (250 ms to 30 s by
   default, Retry-After respected), forever unless ``max_retries`` says otherwise; each retry is
   reported to ``on_error(error, RetryInfo)``. 409 superseded (another poll took over this
   consumer, or an admin seek ended the held poll): retried after a short jittered backoff, raised
   after ``max_superseded`` in a row (default 5): two readers are fighting over one consumer.
   410 raises ``CursorExpired`` with ``earliest``: events are never skipped. Anything else (401
   key rotated, 404 deleted, 409 push_mode, 400) raises ``PollgateError``.
5. Empty pages are not yielded; their cursor (how far the filter scanned) is acked on the next
   poll, so a selective filter keeps moving through a long backlog.
6. Wait negotiation: a server may hold polls for less than the client asks
   (``POLLGATE_MAX_WAIT``). The client learns the server's maximum from the ``pollgate-max-wait``
   response header when the server sends it, else from the 400 that refuses a too-long ``wait``,
   lowers its wait to that maximum and goes on instead of failing.

Example::

    import threading
    from pollgate_client import Client, stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)  # SIGINT/SIGTERM end the loop cleanly
    client = Client("https://events.example.com", "pgk_...")
    for event in client.events(stop=stop):
        handle(event)          # raise to stop without acking this page
"""
from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import re
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, TypedDict, Union
from urllib.parse import urlencode, urlsplit

__all__ = [
    "Backoff",
    "Client",
    "CursorExpired",
    "Envelope",
    "NetworkError",
    "Page",
    "PollgateError",
    "RetryInfo",
    "backoff_delay",
    "is_retryable",
    "stop_on_signals",
]

__version__ = "0.1.0"

log = logging.getLogger("pollgate")
# Retries and a lowered wait are logged at WARNING; they show once the application configures
# logging, and not on stderr by default (a library leaves that choice to the application).
log.addHandler(logging.NullHandler())

DEFAULT_WAIT = 25.0
"""Seconds a poll holds by default: under the 60 s idle limit of common proxies."""
DEFAULT_TIMEOUT = 30.0
"""Socket timeout of a request that does not hold."""
HOLD_GRACE = 15.0
"""A held poll's socket timeout exceeds its wait by this much (server scheduling, slow links)."""
DEFAULT_MAX_SUPERSEDED = 5
FLUSH_TIMEOUT = 5.0
"""Budget of the final ack when an iterator is stopped."""
MAX_WAIT_HEADER = "pollgate-max-wait"
STOP_CHECK_INTERVAL = 0.2
"""How often a held poll looks at its stop event (a blocking socket cannot wait on both)."""


class Envelope(TypedDict):
    """An event, identical on the poll path and the push path."""

    id: str
    cursor: str
    type: str
    tenant: str
    time: str
    data: Any


class Page(TypedDict):
    """The answer to GET /v1/events."""

    events: List[Envelope]
    cursor: str
    more: bool


# ---- errors -------------------------------------------------------------------------------


class PollgateError(Exception):
    """A non-2xx answer: the HTTP status, the body's ``error.code`` and message, its other fields.

    ``code`` is ``http_<status>`` when the body was not pollgate's (a proxy's page).
    ``retry_after`` is the Retry-After header in seconds, when the answer carried one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[Mapping[str, Any]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: Dict[str, Any] = dict(details or {})
        self.retry_after = retry_after

    @property
    def field(self) -> Optional[str]:
        """The request field a 400 names, when it names one."""
        value = self.details.get("field")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class CursorExpired(PollgateError):
    """410: retention removed events after the read position. Nothing was skipped.

    Seek the consumer (to ``earliest``, or elsewhere) with the admin key and poll again.
    """

    def __init__(self, message: str, details: Mapping[str, Any], earliest: str) -> None:
        super().__init__(410, "cursor_expired", message, details)
        self.earliest = earliest
        """Reading after this cursor yields the oldest retained event of the tenant."""


class NetworkError(Exception):
    """No answer from the server (refused, reset, DNS, timeout): retryable by nature.

    ``kind`` is one of ``timeout``, ``refused``, ``reset``, ``dns``, ``network``; the
    underlying exception is ``__cause__``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Stopped(Exception):
    """The iterator's stop event cut a request; never leaves this module."""


def is_retryable(error: BaseException) -> bool:
    """No answer, 5xx (a deploy's 503 included), 429 and 408 are worth trying again."""
    if isinstance(error, NetworkError):
        return True
    if isinstance(error, PollgateError):
        return error.status >= 500 or error.status in (429, 408)
    return False


# ---- backoff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, in seconds.

    The n-th consecutive failure waits a uniform random time in
    ``[0, min(maximum, initial * 2**(n-1))]``: a fleet of consumers that lost the gateway at the
    same moment does not come back all at once. A server's Retry-After raises the delay, never
    past ``maximum``.
    """

    initial: float = 0.25
    maximum: float = 30.0


DEFAULT_BACKOFF = Backoff()
SUPERSEDED_BACKOFF = Backoff(initial=0.1, maximum=5.0)
"""Brief: a poll ended by an admin seek resumes at once."""


def backoff_delay(
    attempt: int,
    backoff: Backoff = DEFAULT_BACKOFF,
    retry_after: Optional[float] = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (from 1)."""
    cap = min(backoff.maximum, backoff.initial * 2 ** min(max(0, attempt - 1), 30))
    jittered = rng() * cap
    if retry_after is None:
        return jittered
    return min(backoff.maximum, max(jittered, retry_after))


@dataclass(frozen=True)
class RetryInfo:
    """What ``on_error`` is told about a retry."""

    attempt: int
    """Consecutive failures of this kind so far, from 1."""
    delay: float
    """Seconds the iterator waits before trying again."""


# ---- answers ------------------------------------------------------------------------------


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After in seconds or as an HTTP date, in seconds; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at is None:
        return None
    return max(0.0, at.timestamp() - time.time())


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:200]


def _error_from_answer(status: int, text: str, headers: http.client.HTTPMessage) -> PollgateError:
    """The error for a non-2xx answer, from its status, body text and headers."""
    retry_after = _parse_retry_after(headers.get("retry-after"))
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        # Not one of ours (a proxy's page, an empty body): keep a short excerpt as the message.
        return PollgateError(status, f"http_{status}", _excerpt(text) or f"HTTP {status}", {}, retry_after)
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    code: str = error["code"]
    message = error.get("message") if isinstance(error.get("message"), str) else f"HTTP {status} {code}"
    earliest = details.get("earliest")
    if status == 410 and code == "cursor_expired" and isinstance(earliest, str):
        return CursorExpired(message, details, earliest)
    return PollgateError(status, code, message, details, retry_after)


def _network_error(error: BaseException) -> NetworkError:
    """Names the failure of a request that got no answer."""
    if isinstance(error, socket.timeout):  # TimeoutError since 3.10
        kind = "timeout"
    elif isinstance(error, ConnectionRefusedError):
        kind = "refused"
    elif isinstance(error, (ConnectionError, http.client.IncompleteRead, http.client.BadStatusLine)):
        kind = "reset"
    elif isinstance(error, socket.gaierror):
        kind = "dns"
    else:
        kind = "network"
    return NetworkError(kind, f"request failed ({kind}): {error or type(error).__name__}")


def _format_seconds(seconds: float) -> str:
    """A wait as the server reads it: digits and an optional fraction, no exponent."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _max_wait_of_refusal(error: PollgateError, asked: float) -> Optional[float]:
    """The server's longest wait, read from a 400 that refused ``asked``; None if it says none.

    The message names the range (``wait: must be a number of seconds from 0 to 5``); the
    largest number in it below what was asked is the maximum. A ``max_wait`` field wins.
    """
    if error.status != 400 or (error.field != "wait" and not error.message.startswith("wait")):
        return None
    stated = error.details.get("max_wait")
    if isinstance(stated, (int, float)) and not isinstance(stated, bool) and 0 < stated < asked:
        return float(stated)
    below = [float(n) for n in _NUMBER.findall(error.message) if 0 < float(n) < asked]
    return max(below) if below else None


# ---- cancelling a held poll ---------------------------------------------------------------


class _StopWatch:
    """Cuts the request in flight when ``stop`` is set.

    A thread blocked on a socket cannot also wait on an Event, so a small daemon thread looks
    at ``stop`` every ``STOP_CHECK_INTERVAL`` and shuts the socket down; the blocked read then
    fails at once and the iterator sees ``stop`` and ends. The thread ends with the iterator.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pollgate-stop", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._ended.is_set():
            if self._stop.wait(STOP_CHECK_INTERVAL):
                with self._lock:
                    conn = self._conn
                if conn is not None:
                    _shut(conn)
                return

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
            if self._stop.is_set():
                raise _Stopped()

    def detach(self) -> None:
        with self._lock:
            self._conn = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def end(self) -> None:
        self._ended.set()


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def stop_on_signals(
    stop: threading.Event,
    signals: Tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Sets ``stop`` when one of ``signals`` arrives (call it from the main thread).

    ``Event.set()`` takes a lock that the interrupted main thread may be holding at that very
    moment (inside ``Event.wait``), so calling it from the handler itself can deadlock; the
    handler hands it to a short-lived thread instead.
    """

    def handler(signum: int, frame: object) -> None:
        threading.Thread(target=stop.set, name="pollgate-signal", daemon=True).start()

    for s in signals:
        signal.signal(s, handler)


# ---- the client ---------------------------------------------------------------------------


_Query = Mapping[str, Union[str, int, float, None]]


class Client:
    """A consumer's client: its ``pgk_...`` key on one pollgate.

    ``base_url`` is the gateway, e.g. ``http://127.0.0.1:8080`` (a path prefix is kept).
    ``timeout`` is the socket timeout of requests that do not hold; a poll gets its wait plus
    a grace. ``headers`` go on every request (a proxy's, say). Connections are kept alive and
    reused; the client is safe to share between threads. ``close()`` (or ``with``) drops them.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        headers: Optional[Mapping[str, str]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if not key:
            raise ValueError("pollgate client: key is required")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"pollgate client: base_url must be an http:// or https:// URL, not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl_context if ssl_context is not None else (ssl.create_default_context() if self._https else None)
        self._timeout = timeout
        self._headers = {
            **dict(headers or {}),
            "Accept": "application/json",
            "Authorization": f"Bearer {key}",
            "User-Agent": f"pollgate-python/{__version__}",
        }
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._max_wait: Optional[float] = None

    @property
    def max_wait(self) -> Optional[float]:
        """The server's longest wait in seconds, once the server told it; polls ask no more."""
        return self._max_wait

    # ---- single calls

    def poll(
        self,
        wait: Optional[float] = None,
        limit: Optional[int] = None,
        after: Optional[str] = None,
        ack: Optional[str] = None,
    ) -> Page:
        """One GET /v1/events: commit ``ack`` first (if given), then read, holding up to ``wait``
        seconds while nothing is there (server default 25). ``after`` reads after that cursor
        instead of the committed one. A ``wait`` above the server's maximum is lowered to it."""
        return self._poll(wait, limit, after, ack, None)

    def ack(self, cursor: str, timeout: Optional[float] = None) -> Dict[str, str]:
        """POST /v1/ack: answers ``{"cursor": committed}`` (a cursor never moves backwards)."""
        _, answer = self._request("POST", "/v1/ack", body={"cursor": cursor}, timeout=timeout)
        return answer

    def consumer(self) -> Dict[str, Any]:
        """GET /v1/consumer: the caller's own consumer (id, tenant, filter, mode, cursor, lag...)."""
        _, answer = self._request("GET", "/v1/consumer")
        return answer

    # ---- iterators

    def events(
        self,
        wait: float = DEFAULT_WAIT,
        limit: Optional[int] = None,
        stop: Optional[threading.Event] = None,
        *,
        on_error: Optional[Callable[[Exception, RetryInfo], None]] = None,
        ack: bool = True,
        after: Optional[str] = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_retries: Optional[int] = None,
        max_superseded: int = DEFAULT_MAX_SUPERSEDED,
    ) -> Iterator[Envelope]:
        """Every event, in order, acked a page at a time after the loop body finished it.

        ``ack=False`` only reads, moving on with ``after`` (replay; the consumer's cursor stays).
        See the module docstring for what happens on errors and on ``stop``.
        """
        reader = _Reader(self, wait, limit, stop, on_error, ack, after, backoff, max_retries, max_superseded)
        return self._events(reader)

    def batches(
        self,
        wait: float = DEFAULT_WAIT,
        limit: Optional[int] = None,
        stop: Optional[threading.Event] = None,
        *,
        on_error: Optional[Callable[[Exception, RetryInfo], None]] = None,
        ack: bool = True,
        after: Optional[str] = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_retries: Optional[int] = None,
        max_superseded: int = DEFAULT_MAX_SUPERSEDED,
    ) -> Iterator[Page]:
        """Whole non-empty pages, each acked after the loop body finished it (asked for the next)."""
        reader = _Reader(self, wait, limit, stop, on_error, ack, after, backoff, max_retries, max_superseded)
        return self._batches(reader)

    @staticmethod
    def _events(r: _Reader) -> Iterator[Envelope]:
        try:
            while True:
                page = r.next()
                if page is None:
                    r.flush()
                    return
                for event in page["events"]:
                    yield event
                    # Resumed: the body finished this event. (A body that raised or broke out
                    # closes the generator at the yield instead: nothing more is acked.)
                    r.finished(event["cursor"])
                    if r.stopped:
                        r.flush()
                        return
                r.finished(page["cursor"])
        finally:
            r.close()

    @staticmethod
    def _batches(r: _Reader) -> Iterator[Page]:
        try:
            while True:
                page = r.next()
                if page is None:
                    r.flush()
                    return
                if page["events"]:
                    yield page
                r.finished(page["cursor"])
        finally:
            r.close()

    # ---- plumbing

    def close(self) -> None:
        """Closes the kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poll(
        self,
        wait: Optional[float],
        limit: Optional[int],
        after: Optional[str],
        ack: Optional[str],
        watch: Optional[_StopWatch],
    ) -> Page:
        asked = None if wait is None else float(wait)
        if asked is not None and asked < 0:
            raise ValueError("pollgate client: wait must be 0 or more seconds")
        # Each refusal lowers the wait strictly; a few rounds settle any honest server.
        for negotiation in range(4):
            effective = asked
            if effective is not None and self._max_wait is not None:
                effective = min(effective, self._max_wait)
            query = {"wait": None if effective is None else _format_seconds(effective), "limit": limit, "after": after, "ack": ack}
            hold = DEFAULT_WAIT if effective is None else effective
            try:
                _, page = self._request("GET", "/v1/events", query=query, timeout=hold + HOLD_GRACE, watch=watch)
                return page
            except PollgateError as error:
                # The server validates the query before it commits `ack`, so asking again is safe.
                lowered = self._lowered_wait(error, effective)
                if lowered is None or negotiation == 3:
                    raise
                log.warning(
                    "pollgate: the server holds polls for at most %s s; polling with wait=%s instead of %s",
                    _format_seconds(lowered), _format_seconds(lowered), _format_seconds(effective or 0),
                )
                self._max_wait = lowered
        raise AssertionError("unreachable: the last round returns or raises")

    def _lowered_wait(self, error: PollgateError, asked: Optional[float]) -> Optional[float]:
        """The wait to ask instead after ``error``, or None when the error is not about wait."""
        if asked is None or error.status != 400:
            return None
        # The header of this very answer (learned in _request) wins over reading the message.
        if self._max_wait is not None and self._max_wait < asked and (error.field == "wait" or error.message.startswith("wait")):
            return self._max_wait
        return _max_wait_of_refusal(error, asked)

    def _learn_max_wait(self, headers: http.client.HTTPMessage) -> None:
        value = headers.get(MAX_WAIT_HEADER)
        if value is None:
            return
        try:
            seconds = float(value)
        except ValueError:
            return
        if seconds > 0 and seconds == seconds and seconds != float("inf"):
            self._max_wait = seconds

    def _target(self, path: str, query: Optional[_Query]) -> str:
        target = self._prefix + path
        pairs = [(k, v if isinstance(v, str) else str(v)) for k, v in (query or {}).items() if v is not None]
        return f"{target}?{urlencode(pairs)}" if pairs else target

    def _connection(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection if one is idle (reused=True), else a new one."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl), False
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 4:
                self._idle.append(conn)
                return
        conn.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[_Query] = None,
        body: Any = None,
        timeout: Optional[float] = None,
        watch: Optional[_StopWatch] = None,
    ) -> Tuple[int, Any]:
        """One exchange: (status, parsed JSON) on a 2xx; PollgateError / NetworkError otherwise.

        No retries here, except once on a fresh connection when a kept-alive one turns out to
        have been closed by the server while idle (every request here is safe to repeat).
        """
        target = self._target(path, query)
        headers = dict(self._headers)
        payload: Optional[bytes] = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        budget = self._timeout if timeout is None else timeout
        while True:
            conn, reused = self._connection(budget)
            try:
                try:
                    if watch is not None:
                        watch.attach(conn)
                    conn.request(method, target, body=payload, headers=headers)
                    response = conn.getresponse()
                    raw = response.read()
                finally:
                    if watch is not None:
                        watch.detach()
            except _Stopped:
                conn.close()
                raise
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                if watch is not None and watch.stopped:
                    raise _Stopped() from error
                if reused and isinstance(error, (ConnectionError, http.client.BadStatusLine)):
                    continue
                raise _network_error(error) from error
            if watch is not None and watch.stopped:
                # The socket may have been shut down right after the answer: do not keep it.
                conn.close()
            elif response.will_close:
                conn.close()
            else:
                self._release(conn)
            break

        self._learn_max_wait(response.headers)
        text = raw.decode("utf-8", errors="replace")
        if not 200 <= response.status < 300:
            raise _error_from_answer(response.status, text, response.headers)
        try:
            return response.status, (json.loads(text) if text else None)
        except ValueError:
            # A 2xx that is not JSON did not come from pollgate (a captive portal, a misrouted proxy).
            raise PollgateError(response.status, "invalid_response", f"the answer is not JSON: {_excerpt(text)}") from None


class _Reader:
    """The state both iterators share: where to read from, and what the body finished but the
    server has not committed yet. ``next()`` answers the next page, or None once stopped."""

    def __init__(
        self,
        client: Client,
        wait: float,
        limit: Optional[int],
        stop: Optional[threading.Event],
        on_error: Optional[Callable[[Exception, RetryInfo], None]],
        commit: bool,
        after: Optional[str],
        backoff: Backoff,
        max_retries: Optional[int],
        max_superseded: int,
    ) -> None:
        if commit and after is not None:
            raise ValueError("pollgate client: `after` needs ack=False (to move a committed cursor, seek the consumer)")
        if wait < 0:
            raise ValueError("pollgate client: wait must be 0 or more seconds")
        self._client = client
        self._wait = wait
        self._limit = limit
        self._stop = stop
        self._on_error = on_error
        self._commit = commit
        self._backoff = backoff
        self._max_retries = max_retries
        self._max_superseded = max_superseded
        self._done: Optional[str] = after
        """Finished by the body: the next ack (commit mode) or the read position (read-only)."""
        self._acked: Optional[str] = None
        """What the server is known to have committed from us."""
        self._watch: Optional[_StopWatch] = None
        """Started on the first poll, so an iterator never iterated leaves no thread behind."""

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _unacked(self) -> Optional[str]:
        if self._commit and self._done is not None and self._done != self._acked:
            return self._done
        return None

    def next(self) -> Optional[Page]:
        failures = 0
        superseded = 0
        while True:
            if self.stopped:
                return None
            ack_to = self._unacked()
            if self._stop is not None and self._watch is None:
                self._watch = _StopWatch(self._stop)
            try:
                page = self._client._poll(
                    self._wait,
                    self._limit,
                    None if self._commit else self._done,
                    ack_to,
                    self._watch,
                )
                if ack_to is not None:
                    self._acked = ack_to
                # Stopped while the answer was on its way: leave its events for the next run.
                return None if self.stopped else page
            except _Stopped:
                return None
            except (PollgateError, NetworkError) as error:
                if self.stopped:
                    return None
                # These answers come after the server committed the ack (it acks before it reads
                # or holds). Not sending it again matters: after an admin seek ended the held
                # poll, a repeated ack would move the cursor back to where the seek took it from.
                code = error.code if isinstance(error, PollgateError) else None
                if ack_to is not None and code in ("superseded", "cursor_expired"):
                    self._acked = ack_to
                if code == "superseded":
                    superseded += 1
                    attempt = superseded
                    if attempt > self._max_superseded:
                        raise
                    delay = backoff_delay(attempt, SUPERSEDED_BACKOFF)
                elif is_retryable(error):
                    failures += 1
                    attempt = failures
                    if self._max_retries is not None and attempt > self._max_retries:
                        raise
                    retry_after = error.retry_after if isinstance(error, PollgateError) else None
                    delay = backoff_delay(attempt, self._backoff, retry_after)
                else:
                    raise
                if self._on_error is not None:
                    self._on_error(error, RetryInfo(attempt, delay))
                log.warning("pollgate: poll failed, retrying in %.0f ms: %s", delay * 1000, error)
                if self._stop is not None:
                    if self._stop.wait(delay):
                        return None
                else:
                    time.sleep(delay)

    def finished(self, cursor: str) -> None:
        """The body finished everything up to ``cursor``."""
        self._done = cursor

    def flush(self) -> None:
        """On a clean stop: commit what the body finished. Never raises (the stop is clean)."""
        cursor = self._unacked()
        if cursor is None:
            return
        try:
            self._client.ack(cursor, timeout=FLUSH_TIMEOUT)
            self._acked = cursor
        except (PollgateError, NetworkError) as error:
            # At-least-once still holds: those events come again on the next run.
            log.warning("pollgate: could not commit %s on stop: %s", cursor, error)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.end()
