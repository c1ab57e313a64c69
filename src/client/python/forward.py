#!/usr/bin/env python3
"""forward.py: deliver a pollgate consumer's events to a local URL, the Python twin of
``pollgate forward``. Standard library only; needs pollgate_client.py beside it.

    POLLGATE_URL=https://events.example.com POLLGATE_KEY=pgk_... \\
        python3 forward.py --to http://localhost:3000/hook --secret whsec_...

1. It long-polls with the consumer key (outbound only) and POSTs each event's envelope as JSON to
   ``--to``, signed with Standard Webhooks headers (webhook-id = the event id, stable across
   retries), so a handler written for pollgate's webhooks works unchanged.
   Redirects are not followed: a 3xx is a failure.
2. Strictly in log order, one event at a time. A failure (non-2xx, timeout, refused) is retried
   with exponential backoff and full jitter (0.5 s to 30 s, Retry-After honoured), for ever: an
   event is never skipped.
3. The cursor moves only past delivered events: a page is acked on the next poll once every event
   of it got a 2xx; on stop, what was delivered is committed.
4. SIGINT/SIGTERM: no new attempt starts, an attempt in flight may finish (bounded by
   ``--timeout``; a second signal cuts it), then exit 0. An undelivered event is never acked.
5. The secret: ``--secret``, else $POLLGATE_FORWARD_SECRET, else one is generated and printed to
   stderr once (it changes on every start: pass it to keep it).

Exit codes: 0 stopped by a signal, 1 the gateway refused for good (key rotated, consumer deleted,
410 cursor expired...), 2 bad command line.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from pollgate_client import Backoff, Client, Envelope, PollgateError, RetryInfo, __version__, backoff_delay

RETRY = Backoff(initial=0.5, maximum=30.0)
DEFAULT_URL = "http://127.0.0.1:8080"
SECRET = re.compile(r"^whsec_([A-Za-z0-9+/]+={0,2})$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
RESERVED = {
    "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length",
    "host", "connection", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer", "expect", "user-agent",
}


def say(line: str) -> None:
    print(f"forward: {line}", file=sys.stderr, flush=True)


class Cut(Exception):
    """A second stop signal: cut the attempt in flight."""


@dataclass
class Target:
    url: str
    headers: Dict[str, str]
    secret: bytes
    """The HMAC key: the secret's base64 part, decoded."""
    timeout: float


@dataclass
class Outcome:
    ok: bool
    status: Optional[int]
    failure: str
    retry_after: Optional[float]
    duration_ms: int


def sign(secret: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
    mac = hmac.new(secret, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def envelope_bytes(event: Envelope) -> bytes:
    """The envelope as compact JSON, keys in the order the gateway sent them."""
    try:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate escaped in the gateway's JSON cannot be UTF-8: keep it escaped.
        return json.dumps(event, separators=(",", ":")).encode("ascii")


def deliver(target: Target, event: Envelope, body: bytes) -> Outcome:
    """One attempt: POST the body, no redirects followed; ok on a 2xx."""
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        **target.headers,
        "Content-Type": "application/json",
        "User-Agent": f"pollgate-forward-python/{__version__}",
    }
    timestamp = int(time.time())
    headers["webhook-id"] = event["id"]
    headers["webhook-timestamp"] = str(timestamp)
    headers["webhook-signature"] = sign(target.secret, event["id"], timestamp, body)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "", parts.port, timeout=target.timeout)
    started = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # the receiver's answer is not ours to keep
        status = response.status
        took = int((time.monotonic() - started) * 1000)
        retry_after = response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return Outcome(200 <= status < 300, status, f"HTTP {status}", wait, took)
    except (OSError, http.client.HTTPException) as error:
        took = int((time.monotonic() - started) * 1000)
        return Outcome(False, None, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, None, took)
    finally:
        conn.close()


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="forward.py",
        description="Deliver a pollgate consumer's events to a local URL, acking after each 2xx.",
    )
    parser.add_argument("--to", required=True, help="where to POST each event, e.g. http://localhost:3000/hook")
    parser.add_argument("--url", default=os.environ.get("POLLGATE_URL") or DEFAULT_URL, help=f"the gateway (default: $POLLGATE_URL, else {DEFAULT_URL})")
    parser.add_argument("--key", default=os.environ.get("POLLGATE_KEY"), help="the consumer key pgk_... (default: $POLLGATE_KEY)")
    parser.add_argument("--secret", default=os.environ.get("POLLGATE_FORWARD_SECRET") or None, help='Standard Webhooks secret "whsec_..." (default: $POLLGATE_FORWARD_SECRET, else generated and printed once)')
    parser.add_argument("--header", action="append", default=[], help='extra request header "Name: value" (repeatable)')
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one delivery attempt may take (default 10)")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds each poll holds (default 25; lowered to the server's maximum)")
    parser.add_argument("--limit", type=int, default=None, help="most events per poll (1-1000)")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("no consumer key: pass --key or set POLLGATE_KEY")
    if urlsplit(args.to).scheme not in ("http", "https") or not urlsplit(args.to).hostname:
        parser.error(f'--to: "{args.to}" is not an absolute http:// or https:// URL')
    if not 0 < args.timeout <= 300:
        parser.error("--timeout: must be more than 0 and at most 300 seconds")
    if args.wait < 0:
        parser.error("--wait: must be 0 or more seconds")
    if args.limit is not None and not 1 <= args.limit <= 1000:
        parser.error("--limit: must be an integer from 1 to 1000")
    if args.secret is None:
        args.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        print(
            "forward: no --secret given; generated one for this run (configure your handler with it;"
            f" pass --secret to keep it stable):\n\n    {args.secret}\n",
            file=sys.stderr,
            flush=True,
        )
    m = SECRET.match(args.secret)
    if not m or not 24 <= len(base64.b64decode(m.group(1))) <= 64:
        parser.error('--secret: must be "whsec_" followed by base64 of 24 to 64 bytes')
    headers: Dict[str, str] = {}
    for h in args.header:
        name, _, value = h.partition(":")
        name, value = name.strip(), value.strip()
        if not HEADER_NAME.match(name) or any(c in value for c in "\r\n\0"):
            parser.error(f'--header: "{h}" must be "Name: value"')
        if name.lower() in RESERVED:
            parser.error(f"--header: {name} is set by the forwarder itself")
        headers[name] = value
    args.target = Target(args.to, headers, base64.b64decode(m.group(1)), args.timeout)
    return args


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # the client's wait notices
    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        if stop.is_set():
            raise Cut()
        # Not stop.set() here: it takes a lock the interrupted main thread may hold (see
        # pollgate_client.stop_on_signals).
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def on_error(error: Exception, info: RetryInfo) -> None:
        say(f"poll failed ({error}); retrying in {int(info.delay * 1000)} ms")

    client = Client(args.url, args.key)
    delivered: Optional[str] = None
    """The last event that got a 2xx: committed on the way out."""
    say(f"delivering to {args.to}")
    try:
        for event in client.events(wait=args.wait, limit=args.limit, stop=stop, on_error=on_error):
            body = envelope_bytes(event)
            attempt = 1
            while True:
                what = f"{event['id']} {event['type']} cursor {event['cursor']} attempt {attempt}"
                o = deliver(args.target, event, body)
                if o.ok:
                    say(f"{what} → {o.status} in {o.duration_ms} ms")
                    delivered = event["cursor"]
                    break
                if stop.is_set():
                    say(f"{what} → {o.failure} in {o.duration_ms} ms; stopping, not acked")
                    break
                delay = backoff_delay(attempt, RETRY, o.retry_after)
                say(f"{what} → {o.failure} in {o.duration_ms} ms; retrying in {int(delay * 1000)} ms")
                if stop.wait(delay):
                    say(f"stopping; {event['id']} not delivered, not acked")
                    break
                attempt += 1
            if stop.is_set() and delivered != event["cursor"]:
                break  # leaves the iterator without acking this event
    except Cut:
        say("stopping now; the attempt in flight is cut, not acked")
    except PollgateError as error:
        say(f"the gateway refused: {error}")
        return 1
    # Leaving the loop early commits nothing by itself: commit the events that got a 2xx.
    if delivered is not None:
        try:
            client.ack(delivered, timeout=5.0)
        except Exception as error:  # noqa: BLE001 (the stop stays clean; those events come again)
            say(f"could not commit {delivered} on stop ({error}); those events will come again")
    client.close()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
