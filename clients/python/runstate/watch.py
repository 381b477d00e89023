"""``statusChanged`` over server-sent events, resumed from the last cursor after every drop."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

from .errors import RunstateError
from .models import STATUS_CHANGE_FIELDS, StatusChange
from .transport import Transport, backoff, dumps, open_connection

__all__ = ["StatusChangeWatch", "ReconnectInfo"]

# Subscription endings after which resuming from the last cursor loses nothing.
RESUMABLE = frozenset({"SERVER_STOPPING", "SUBSCRIPTION_OVERFLOW", "SERVICE_UNAVAILABLE"})

WATCH_QUERY = f"""subscription Watch($filter: StatusChangeFilter, $after: String, $dialect: Dialect) {{
  statusChanged(filter: $filter, after: $after) {{ {STATUS_CHANGE_FIELDS} }} }}"""


@dataclass(frozen=True)
class ReconnectInfo:
    """What ``on_reconnect`` is told before the watch subscribes again."""

    attempt: int
    """1 for the first reconnection since the last change received, then 2, 3..."""
    cursor: Optional[str]
    """Where it resumes: the last change received."""
    reason: str
    """Why the last connection ended."""


class _Resume(Exception):
    """The stream ended in a way a new subscription after the last cursor repairs."""


_END = object()


class StatusChangeWatch(Iterator[StatusChange]):
    """Live status changes, as an iterator, that survive dropped connections by themselves.

    A daemon thread holds the subscription (``POST`` with ``Accept: text/event-stream``). When the
    connection drops, the stream ends, the server stops or the subscriber falls too far behind,
    it subscribes again with ``after`` = the last change it received: by the API's contract,
    nothing is missed and nothing arrives twice. An error a new connection cannot fix (a bad
    filter, a refused token) is raised by the iteration, after every change received before it.

    Use it as a context manager, or call :meth:`close` (from any thread) when done::

        with client.watch({"projects": ["vision"]}) as changes:
            for change in changes:
                print(change.run_id, change.from_, "->", change.to)
    """

    def __init__(
        self,
        transport: Transport,
        filter: Optional[Mapping[str, Any]] = None,
        *,
        after: Optional[str] = None,
        dialect: Optional[str] = None,
        on_reconnect: Optional[Callable[[ReconnectInfo], None]] = None,
        idle_timeout: float = 60.0,
        buffer: int = 1000,
    ):
        self._transport = transport
        self._variables: Dict[str, Any] = {"filter": dict(filter or {}), "dialect": dialect}
        self._cursor = after  # the last change handed to the caller
        self._resume_after = after  # the last change received (the queue may hold more)
        self._on_reconnect = on_reconnect
        self._idle_timeout = idle_timeout
        # Bounded: a caller that stops reading stops the reading of the socket too, and the
        # server, not this process, decides how far behind it may fall.
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, buffer))
        self._stopped = threading.Event()
        self._finished = False
        self._lock = threading.Lock()
        self._connection: Optional[http.client.HTTPConnection] = None
        self._thread = threading.Thread(target=self._run, name="runstate-watch", daemon=True)
        self._thread.start()

    @property
    def cursor(self) -> Optional[str]:
        """The last change's cursor: where to resume next time (pass it as ``after``)."""
        return self._cursor

    def __iter__(self) -> "StatusChangeWatch":
        return self

    def __next__(self) -> StatusChange:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> StatusChange:
        """The next change; waits at most ``timeout`` seconds (then raises TimeoutError)."""
        if self._finished:
            raise StopIteration
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no status change within {timeout} s") from None
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            self.close()
            raise item
        change: StatusChange = item
        self._cursor = change.cursor
        return change

    def close(self) -> None:
        """Stop watching: the subscription ends and the iteration stops."""
        self._stopped.set()
        self._abort_connection()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        # Wake a caller waiting in next(); what the queue held is dropped.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._finished = True
        while True:
            try:
                self._queue.put_nowait(_END)
                return
            except queue.Full:  # the reading thread had not stopped yet: make room
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def __enter__(self) -> "StatusChangeWatch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # The reading thread.

    def _put(self, item: Any) -> bool:
        """Hand an item to the caller, waiting while the queue is full; False once closed."""
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        retry = self._transport.retry
        failures = 0
        try:
            while not self._stopped.is_set():
                reason = "the subscription ended"
                try:
                    for change in self._subscribe():
                        self._resume_after = change.cursor
                        failures = 0
                        if not self._put(change):
                            return
                except _Resume as resume:
                    reason = str(resume)
                except RunstateError as error:
                    self._put(error)
                    return
                except (OSError, http.client.HTTPException, ValueError) as error:
                    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                finally:
                    self._abort_connection()
                if self._stopped.is_set():
                    return
                failures += 1
                if self._on_reconnect is not None:
                    self._on_reconnect(
                        ReconnectInfo(attempt=failures, cursor=self._resume_after, reason=reason)
                    )
                delay = 0.0 if failures == 1 else backoff(failures - 1, retry.base_delay, retry.max_delay)
                if self._stopped.wait(delay):
                    return
        except BaseException as error:  # a bug, or on_reconnect raised: tell the caller
            self._put(error)
        finally:
            if not self._stopped.is_set():
                self._put(_END)

    def _subscribe(self) -> Iterator[StatusChange]:
        """One subscription: its changes, until it ends (_Resume) or fails (RunstateError)."""
        connection, path = open_connection(self._transport.url, self._transport.retry.timeout)
        connection.connect()
        # Then no more than idle_timeout between two reads: the server pings every 12 s, so a
        # silence that long is a connection that died without a word (resumed like a drop).
        connection.sock.settimeout(self._idle_timeout)
        with self._lock:
            # close() either sees this connection or was called before: then stop here.
            if self._stopped.is_set():
                connection.close()
                return
            self._connection = connection
        body = dumps({"query": WATCH_QUERY, "variables": {**self._variables, "after": self._resume_after}})
        connection.request("POST", path, body=body, headers=self._transport.headers("text/event-stream"))
        response = connection.getresponse()
        if "text/event-stream" not in (response.getheader("content-type") or ""):
            _refusal(response)  # raises
        event: Optional[str] = None
        data: List[str] = []
        while True:
            line = response.readline()
            if not line:
                raise _Resume("the connection closed")
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "":
                if event is not None or data:
                    change = _dispatch(event, "\n".join(data))
                    if change is not None:
                        yield change
                event, data = None, []
                continue
            if text.startswith(":"):
                continue  # a keep-alive ping
            name, _, value = text.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)

    def _abort_connection(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is None:
            return
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read in the reading thread
            except OSError:
                pass
        connection.close()


def _dispatch(event: Optional[str], data: str) -> Optional[StatusChange]:
    if event == "complete":
        raise _Resume("the subscription ended")
    if event not in (None, "next") or not data:
        return None
    payload = json.loads(data)
    errors = payload.get("errors") or []
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        extensions = first.get("extensions") or {}
        code = str(extensions.get("code") or "UNKNOWN")
        if code in RESUMABLE:
            raise _Resume(code)
        raise RunstateError(str(first.get("message") or code), code, extensions)
    change = (payload.get("data") or {}).get("statusChanged")
    return StatusChange.from_wire(change) if change else None


def _refusal(response: http.client.HTTPResponse) -> None:
    """An answer that is no event stream: resume where a new try may do better, else raise."""
    status = response.status
    try:
        payload = json.loads(response.read().decode("utf-8") or "null")
    except (ValueError, OSError, http.client.HTTPException):
        payload = None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions") or {}
    code = extensions.get("code")
    if code in RESUMABLE or status in (429, 502, 503, 504):
        raise _Resume(str(code or f"HTTP {status}"))
    raise RunstateError(
        str(first.get("message") or f"HTTP {status}"),
        str(code or "HTTP_ERROR"),
        extensions or {"status": status},
    )
