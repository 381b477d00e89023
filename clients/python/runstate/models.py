"""What the server answers, as Python objects with snake_case attributes.

Every object keeps the server's answer as it came in ``raw`` (camelCase keys), so a field this
module does not name yet is still at hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Union

__all__ = [
    "Dialect",
    "Run",
    "StatusChange",
    "RunPage",
    "TransitionAccepted",
    "IllegalTransition",
    "TransitionConflict",
    "RunNotFound",
    "TransitionResult",
]


class Dialect(str, Enum):
    """A status vocabulary: runstate's own, or that of a system runstate serves.

    Anywhere a dialect is taken, its name as a string works too, in any case (``"parsl"``).
    """

    RUNSTATE = "RUNSTATE"
    POLYAXON = "POLYAXON"
    PERCEVAL = "PERCEVAL"
    PARSL = "PARSL"
    CANARY = "CANARY"

    def __str__(self) -> str:
        return self.value


_FRACTION = re.compile(r"\.(\d+)")


def parse_datetime(value: Optional[str]) -> Optional[datetime]:
    """An ISO-8601 date-time as the server writes it (``2026-11-21T19:50:01.123Z``), aware."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.9's fromisoformat takes 3 or 6 fractional digits only.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    return datetime.fromisoformat(text)


# The run's own columns (nothing here costs the server another read per answer), as the
# TypeScript client asks for them, plus `revision` (which of two snapshots is newer).
_RUN_BASE_FIELDS = """id project name status category color version revision attempt progress
  phase heartbeatTimeout isRunning isDone tags createdAt updatedAt startedAt finishedAt dialect
  op rollup scheduledAt blockedReason outcome exitCode attributes"""

RUN_FIELDS = _RUN_BASE_FIELDS + " nativeStatus"
"""A run's fields, ``nativeStatus`` in its own dialect."""

RUN_FIELDS_IN_DIALECT = _RUN_BASE_FIELDS + " nativeStatus(dialect: $dialect)"
"""A run's fields, ``nativeStatus`` in the operation's ``$dialect: Dialect`` (null: the run's)."""

STATUS_CHANGE_FIELDS = """cursor runId from to nativeTo(dialect: $dialect) version reason
  message forced actor at outcome exitCode meta attempt run { project name }"""
"""A change's fields; ``nativeTo`` in the operation's ``$dialect: Dialect`` (null: the run's)."""


@dataclass(frozen=True)
class Run:
    """A run as the server answered it."""

    id: str
    project: str
    name: Optional[str]
    status: str
    """One of the 21 runstate statuses (``RUNNING``, ``SUCCEEDED``...)."""
    category: str
    color: str
    version: int
    """+1 on every accepted status change."""
    revision: int
    """+1 on every change of the run's state (status, progress, heartbeat)."""
    attempt: int
    progress: Optional[float]
    phase: Optional[str]
    heartbeat_timeout: Optional[int]
    is_running: bool
    is_done: bool
    tags: List[str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    dialect: str
    """The run's home dialect (``PARSL``...)."""
    native_status: str
    """The status in the run's dialect's names (``exec_done``), or in the dialect a listing asked for."""
    op: Optional[str]
    rollup: bool
    scheduled_at: Optional[datetime]
    blocked_reason: Optional[str]
    outcome: Optional[str] = None
    """What the change into the current DONE status came with (``DIFF``, ``TIMEOUT``); None while
    not done, and after a resume or retry."""
    exit_code: Optional[int] = None
    """The worker's exit code reported with that change, as ``outcome``."""
    attributes: Dict[str, Any] = field(default_factory=dict)
    """Free-form JSON object, changed after creation with :meth:`RunHandle.update`."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "Run":
        return cls(
            id=data["id"],
            project=data["project"],
            name=data.get("name"),
            status=data["status"],
            category=data.get("category", ""),
            color=data.get("color", ""),
            version=int(data.get("version") or 0),
            revision=int(data.get("revision") or 0),
            attempt=int(data.get("attempt") or 1),
            progress=data.get("progress"),
            phase=data.get("phase"),
            heartbeat_timeout=data.get("heartbeatTimeout"),
            is_running=bool(data.get("isRunning")),
            is_done=bool(data.get("isDone")),
            tags=list(data.get("tags") or []),
            created_at=parse_datetime(data.get("createdAt")),
            updated_at=parse_datetime(data.get("updatedAt")),
            started_at=parse_datetime(data.get("startedAt")),
            finished_at=parse_datetime(data.get("finishedAt")),
            dialect=data.get("dialect", "RUNSTATE"),
            native_status=data.get("nativeStatus", data["status"]),
            op=data.get("op"),
            rollup=bool(data.get("rollup")),
            scheduled_at=parse_datetime(data.get("scheduledAt")),
            blocked_reason=data.get("blockedReason"),
            outcome=data.get("outcome"),
            exit_code=data.get("exitCode"),
            attributes=dict(data.get("attributes") or {}),
            raw=dict(data),
        )


@dataclass(frozen=True)
class StatusChange:
    """One accepted status change (or a run's creation) from the change log."""

    cursor: str
    """Where a watch resumes: pass it as ``after``."""
    run_id: str
    from_: Optional[str]
    """The status before (``from`` on the wire); None for the creation."""
    to: str
    native_to: str
    """``to`` in the run's dialect's names, or in the dialect the watch asked for."""
    version: int
    reason: Optional[str]
    message: Optional[str]
    forced: bool
    actor: Optional[str]
    at: Optional[datetime]
    project: Optional[str]
    run_name: Optional[str]
    outcome: Optional[str] = None
    """The outcome reported with the change (``DIFF``), or the one its native name carries."""
    exit_code: Optional[int] = None
    meta: Optional[Dict[str, Any]] = None
    """The JSON object reported with the change (Polyaxon's ``meta_info``)."""
    attempt: int = 1
    """The run's attempt after the change (a RETRYING change starts the next one)."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "StatusChange":
        run = data.get("run") or {}
        return cls(
            cursor=data["cursor"],
            run_id=data["runId"],
            from_=data.get("from"),
            to=data["to"],
            native_to=data.get("nativeTo", data["to"]),
            version=int(data["version"]),
            reason=data.get("reason"),
            message=data.get("message"),
            forced=bool(data.get("forced")),
            actor=data.get("actor"),
            at=parse_datetime(data.get("at")),
            project=run.get("project"),
            run_name=run.get("name"),
            outcome=data.get("outcome"),
            exit_code=data.get("exitCode"),
            meta=data.get("meta"),
            attempt=int(data.get("attempt") or 1),
            raw=dict(data),
        )


@dataclass(frozen=True)
class RunPage:
    """A page of runs."""

    runs: List[Run]
    end_cursor: Optional[str]
    """Pass it as ``after`` for the next page."""
    has_next_page: bool
    total_count: Optional[int] = None
    """How many runs match the whole filter; only when asked for (``total_count=True``)."""


@dataclass(frozen=True)
class TransitionAccepted:
    """The change was made (or the run already was in that status)."""

    run: Run
    kind: ClassVar[str] = "TransitionAccepted"
    accepted: ClassVar[bool] = True


@dataclass(frozen=True)
class IllegalTransition:
    """The lifecycle does not allow this move; nothing was written."""

    run_id: str
    from_: str
    to: str
    allowed: List[str]
    """The statuses the run may move to."""
    message: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    kind: ClassVar[str] = "IllegalTransition"
    accepted: ClassVar[bool] = False


@dataclass(frozen=True)
class TransitionConflict:
    """The run is not where the request expected it (another attempt, say); nothing was written."""

    run_id: str
    actual_status: str
    actual_version: int
    actual_attempt: Optional[int]
    message: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    kind: ClassVar[str] = "TransitionConflict"
    accepted: ClassVar[bool] = False


@dataclass(frozen=True)
class RunNotFound:
    """No run has this id (or the token may not see it); nothing was written."""

    run_id: str
    message: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    kind: ClassVar[str] = "RunNotFound"
    accepted: ClassVar[bool] = False


TransitionResult = Union[TransitionAccepted, IllegalTransition, TransitionConflict, RunNotFound]
"""The server's answer to a status change: accepted, or refused with its reason."""

TRANSITION_RESULT_FIELDS = f"""__typename
  ... on TransitionAccepted {{ run {{ {RUN_FIELDS} }} }}
  ... on IllegalTransition {{ runId from to allowed message }}
  ... on TransitionConflict {{ runId actualStatus actualVersion actualAttempt message }}
  ... on RunNotFound {{ runId message }}"""


def transition_result_from_wire(data: Mapping[str, Any]) -> TransitionResult:
    kind = data.get("__typename")
    if kind == "TransitionAccepted":
        return TransitionAccepted(run=Run.from_wire(data["run"]))
    message = str(data.get("message") or kind)
    raw = {k: v for k, v in data.items()}
    if kind == "IllegalTransition":
        return IllegalTransition(
            run_id=data["runId"],
            from_=data["from"],
            to=data["to"],
            allowed=list(data.get("allowed") or []),
            message=message,
            raw=raw,
        )
    if kind == "TransitionConflict":
        return TransitionConflict(
            run_id=data["runId"],
            actual_status=data["actualStatus"],
            actual_version=int(data["actualVersion"]),
            actual_attempt=data.get("actualAttempt"),
            message=message,
            raw=raw,
        )
    if kind == "RunNotFound":
        return RunNotFound(run_id=data["runId"], message=message, raw=raw)
    raise ValueError(f"unknown transition result {kind!r}")
