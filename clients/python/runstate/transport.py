"""GraphQL over HTTP with retries: the one place requests go out."""

from __future__ import annotations

import http.client
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple, cast
from urllib.parse import urlsplit

from .errors import RevisionConflictError, RunstateError, RunstateUnavailableError

__all__ = ["RetryPolicy", "Transport", "backoff"]

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How requests that got no answer are tried again (all durations in seconds)."""

    attempts: int = 6
    """Tries after the first."""
    base_delay: float = 0.1
    """The first backoff, doubled each try, with jitter."""
    max_delay: float = 5.0
    """The longest backoff (and the longest wait a server's Retry-After may ask for)."""
    timeout: float = 30.0
    """How long one try may wait for the server (connecting, and each read)."""


def backoff(attempt: int, base: float, maximum: float, retry_after: Optional[float] = None) -> float:
    """Seconds to wait before try ``attempt`` (1 for the first retry)."""
    if retry_after:
        return min(retry_after, maximum)
    ceiling = min(maximum, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.random() * (ceiling / 2)


def to_wire(value: Any) -> Any:
    """JSON for what json does not know: enums by value, date-times in ISO 8601 with a zone."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.astimezone()  # a naive time is local time
        return aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be sent to runstate")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, default=to_wire, separators=(",", ":")).encode("utf-8")


class _NoAnswer(Exception):
    """The request got no status line: refused, reset, timed out, or cut before the answer."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause
        self.refused = isinstance(cause, ConnectionRefusedError)


class _CutOff(Exception):
    """The answer started (with this status) but its body could not be read whole."""

    def __init__(self, status: int, cause: BaseException):
        super().__init__(str(cause))
        self.status = status
        self.cause = cause


def open_connection(url: str, timeout: float) -> Tuple[http.client.HTTPConnection, str]:
    """A new connection to the URL's host, and the path (with its query) to send requests to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"runstate's URL must be http:// or https://, not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.hostname or "localhost", parts.port, timeout=timeout), path


class Transport:
    """POSTs operations to one GraphQL endpoint, each on a connection of its own."""

    def __init__(self, url: str, token: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        self.url = url
        self.token = token
        self.retry = retry or RetryPolicy()
        open_connection(url, 1)  # refuse a bad URL now, not at the first request

    def headers(self, accept: str) -> Dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, "connection": "close"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def request(
        self,
        query: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        repeatable: bool = True,
        retries: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Send an operation and answer its ``data``, retrying with backoff and the same body.

        ``repeatable`` says sending it twice changes nothing more than once (a query, or a
        mutation with an idempotency key): then any failure to get an answer is retried (network
        errors, timeouts, 429, 502-504, SERVICE_UNAVAILABLE from a database fault), with the same
        body and so the same idempotency key. Otherwise only failures where the server surely did
        not run it are: a refused connection, 429, and a draining instance's 503 SERVER_STOPPING.
        """
        tries = self.retry.attempts if retries is None else retries
        wait = self.retry.timeout if timeout is None else timeout
        body = dumps({"query": query, "variables": dict(variables or {})})
        last: Optional[BaseException] = None
        retry_after: Optional[float] = None
        for attempt in range(tries + 1):
            if attempt > 0:
                time.sleep(backoff(attempt, self.retry.base_delay, self.retry.max_delay, retry_after))
            retry_after = None
            try:
                status, headers, raw = self._post(body, wait)
            except _NoAnswer as problem:
                last = problem.cause
                if repeatable or problem.refused:
                    continue
                raise RunstateUnavailableError(
                    f"no answer from runstate at {self.url} ({problem}); "
                    "the operation may or may not have run"
                ) from problem.cause
            except _CutOff as problem:
                last = problem.cause
                ok = 200 <= problem.status < 300
                if repeatable and (ok or problem.status in RETRIED_STATUSES):
                    continue
                if ok:
                    raise RunstateUnavailableError(
                        f"the answer from runstate at {self.url} was cut off; "
                        "the operation may or may not have run"
                    ) from problem.cause
                raise RunstateError(
                    f"HTTP {problem.status}", "HTTP_ERROR", {"status": problem.status}
                ) from problem.cause
            try:
                payload = json.loads(raw.decode("utf-8")) if raw else None
            except ValueError as error:
                payload = None
                last = error
            if not isinstance(payload, dict):
                # Not a GraphQL answer (a proxy's error page, say).
                if repeatable and status in RETRIED_STATUSES:
                    last = RunstateError(f"HTTP {status}", "HTTP_ERROR", {"status": status})
                    continue
                raise RunstateError(f"HTTP {status}", "HTTP_ERROR", {"status": status})
            errors = payload.get("errors") or []
            codes = [(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)]
            # SERVICE_UNAVAILABLE: the database went away, maybe after the operation committed.
            maybe_ran = "SERVICE_UNAVAILABLE" in codes
            # Surely not run: a 429, or a draining instance's 503 (SERVER_STOPPING and nothing else).
            not_run = status == 429 or (
                status == 503 and len(codes) > 0 and all(c == "SERVER_STOPPING" for c in codes)
            )
            retried = (
                (status in RETRIED_STATUSES or maybe_ran)
                if repeatable
                else (not_run and not maybe_ran)
            )
            if retried:
                retry_after = _retry_after(headers, errors)
                last = _error_of(errors[0], status) if errors else None
                continue
            if maybe_ran:
                raise RunstateUnavailableError(
                    f"the database behind {self.url} went away; "
                    "the operation may or may not have run"
                )
            if errors:
                raise _error_of(errors[0], status)
            data = payload.get("data")
            if not isinstance(data, dict):
                raise RunstateError(f"HTTP {status}", "HTTP_ERROR", {"status": status})
            return cast(Dict[str, Any], data)
        raise RunstateUnavailableError(
            f"runstate at {self.url} did not answer after {tries + 1} tries"
            + (f" (last: {last})" if last else "")
        ) from last

    def _post(self, body: bytes, timeout: float) -> Tuple[int, http.client.HTTPMessage, bytes]:
        connection, path = open_connection(self.url, timeout)
        try:
            try:
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers=self.headers("application/graphql-response+json, application/json"),
                )
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                raise _NoAnswer(error) from error
            try:
                raw = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise _CutOff(response.status, error) from error
            return response.status, response.headers, raw
        finally:
            connection.close()


# Error codes with an exception class of their own (each a RunstateError).
_TYPED_ERRORS = {"REVISION_CONFLICT": RevisionConflictError}


def _error_of(error: Mapping[str, Any], status: int) -> RunstateError:
    extensions = error.get("extensions") or {}
    code = str(extensions.get("code") or "UNKNOWN")
    return _TYPED_ERRORS.get(code, RunstateError)(
        str(error.get("message") or f"HTTP {status}"),
        code,
        extensions,
    )


def _retry_after(headers: http.client.HTTPMessage, errors: Any) -> Optional[float]:
    """A 429 or 503: what the server asked to wait (seconds), if it said."""
    if errors and isinstance(errors[0], dict):
        in_body = (errors[0].get("extensions") or {}).get("retryAfter")
        if isinstance(in_body, (int, float)) and not isinstance(in_body, bool):
            return float(in_body)
    header = headers.get("retry-after") if headers is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
