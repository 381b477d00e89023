"""The client for workers and tools: ``RunstateClient(url, token)``."""

from __future__ import annotations

import atexit
import hashlib
import json
import numbers
import os
import re
import threading
import uuid
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

from .errors import RunstateError, TransitionRefusedError
from .models import (
    RUN_FIELDS,
    RUN_FIELDS_IN_DIALECT,
    STATUS_CHANGE_FIELDS,
    TRANSITION_RESULT_FIELDS,
    Dialect,
    Run,
    RunPage,
    StatusChange,
    TransitionAccepted,
    TransitionResult,
    transition_result_from_wire,
)
from .transport import RetryPolicy, Transport, dumps
from .watch import ReconnectInfo, StatusChangeWatch

__all__ = ["RunstateClient", "RunHandle", "Pipeline"]

DialectLike = Union[Dialect, str]
When = Union[datetime, str]
"""A date-time: an aware datetime (a naive one is taken as local time), or ISO 8601 text."""

# "Not given", where None means something (``update(name=None)`` clears the name).
_UNSET: Any = object()

# Points gathered before measure() sends them at once, whatever the flush interval.
MEASUREMENT_BATCH = 1000


def _new_key() -> str:
    return str(uuid.uuid4())


def _camel(name: str) -> str:
    """``heartbeat_timeout`` -> ``heartbeatTimeout``; camelCase names are left as they are."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _dialect(value: Optional[DialectLike]) -> Optional[str]:
    if value is None:
        return None
    return (value.value if isinstance(value, Enum) else str(value)).upper()


def _status(value: Any) -> Any:
    """A status given as an enum member or in lowercase, as the schema spells it."""
    if isinstance(value, Enum):
        value = value.value
    return value.upper() if isinstance(value, str) else value


def _camel_keys(mapping: Mapping[str, Any]) -> Dict[str, Any]:
    return {_camel(k): v for k, v in mapping.items() if v is not None}


def _run_input(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """CreateRunInput from snake_case (or camelCase) keyword arguments; None means left out."""
    wire = _camel_keys(fields)
    if "dialect" in wire:
        wire["dialect"] = _dialect(wire["dialect"])
    if "trigger" in wire:
        wire["trigger"] = _status(wire["trigger"])
    if "dependencies" in wire:
        wire["dependencies"] = [
            {**_camel_keys(d), **({"when": [_status(s) for s in d["when"]]} if d.get("when") else {})}
            for d in wire["dependencies"]
        ]
    if "events" in wire:
        wire["events"] = [
            {**_camel_keys(e), "kinds": [_status(k) for k in e.get("kinds", [])]}
            for e in wire["events"]
        ]
    for key in ("tags", "dependsOn"):
        if key in wire:
            wire[key] = list(wire[key])
    return wire


def _filter(filter: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """RunFilter / StatusChangeFilter from snake_case (or camelCase) keys."""
    wire = _camel_keys(filter or {})
    for key in ("statuses", "categories"):
        if key in wire:
            wire[key] = [_status(s) for s in wire[key]]
    for key in ("runIds", "projects", "tags"):
        if key in wire:
            wire[key] = list(wire[key])
    if "predicate" in wire:
        predicate = dict(wire["predicate"])
        predicate["dialect"] = _dialect(predicate.get("dialect"))
        wire["predicate"] = predicate
    return wire


def _step_key(parent_key: str, op: str) -> str:
    """A step's idempotency key from its parent's and its op, as the TypeScript client makes it:
    the same pipeline created again with the parent's key (from either client) answers the same
    steps."""
    digest = hashlib.sha256(f"{parent_key}\u0000{op}".encode("utf-8")).hexdigest()
    return f"step-{digest}"


def _bad_input(field: str, message: str) -> RunstateError:
    return RunstateError(message, "BAD_USER_INPUT", {"field": field})


def _op_refs(step: Mapping[str, Any]) -> List[Dict[str, str]]:
    """Every ``ops.<name>`` reference of a step (camelCase keys), with the field it is in."""
    refs = [(f"dependsOn[{i}]", ref) for i, ref in enumerate(step.get("dependsOn") or [])]
    refs += [(f"dependencies[{i}].ref", d.get("ref")) for i, d in enumerate(step.get("dependencies") or [])]
    refs += [(f"events[{i}].ref", e.get("ref")) for i, e in enumerate(step.get("events") or [])]
    return [
        {"field": field, "op": ref[4:]}
        for field, ref in refs
        if isinstance(ref, str) and ref.startswith("ops.")
    ]


def _check_step_order(steps: Sequence[Mapping[str, Any]]) -> None:
    """Steps are created one by one in the order given, and the server resolves ``ops.<name>``
    among the steps that exist: each must come after the ops it refers to. Checked before
    anything is created, so a bad list writes nothing."""
    seen: Dict[str, int] = {}
    ops = [step.get("op") for step in steps]
    for i, step in enumerate(steps):
        op = step.get("op")
        if not isinstance(op, str) or not op:
            raise _bad_input(f"steps[{i}].op", f"steps[{i}] has no op: every step needs one")
        if op in seen:
            raise _bad_input(f"steps[{i}].op", f'op "{op}" is taken by steps[{seen[op]}] already')
        for ref in _op_refs(step):
            if ref["op"] in seen:
                continue
            at = ops.index(ref["op"]) if ref["op"] in ops else -1
            if at == i:
                message = f'step "{op}" refers to itself (ops.{ref["op"]}): a cycle'
            elif at > i:
                message = (
                    f'step "{op}" refers to ops.{ref["op"]}, which comes later (steps[{at}]): '
                    "steps are created in the order given, so list each after the ops it refers to"
                )
            else:
                message = f'step "{op}" refers to ops.{ref["op"]}, which is no step of this pipeline'
            raise _bad_input(f"steps[{i}].{ref['field']}", message)
        seen[op] = i


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _record(
    outcome: Optional[str], exit_code: Optional[int], meta: Optional[Mapping[str, Any]], at: Optional[When]
) -> Dict[str, Any]:
    """What a change reports beside its status: TransitionRunInput's outcome, exitCode, meta and
    at (None: left out)."""
    return {
        "outcome": outcome,
        "exitCode": exit_code,
        "meta": dict(meta) if meta is not None else None,
        "at": at,
    }


def _point_value(value: Any) -> Dict[str, Any]:
    """A measured point's value on the wire: a number as ``value``, any other JSON as ``data``
    (copied now: a dict changed after measure() is sent as it was)."""
    if value is None:
        raise ValueError("a measurement needs a value: a number, or any other JSON value (not None)")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return {"value": float(value)}
    return {"data": json.loads(dumps(value))}  # TypeError now for what JSON cannot hold


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as :meth:`RunstateClient.create_pipeline` made it."""

    parent: "RunHandle"
    steps: Dict[str, "RunHandle"]
    """Each step's handle by its op (``pipeline.steps["train"]``)."""


class RunstateClient:
    """A client for workers and tools.

    ``url`` is the GraphQL endpoint (``http://localhost:4000/graphql``) and ``token`` an API token
    (WRITE to report, READ to watch). Requests that got no answer (network errors, timeouts, 429,
    502-504, SERVICE_UNAVAILABLE) are retried per ``retry``, with the same idempotency keys.
    ``heartbeat_interval`` (seconds) overrides the heartbeat period of running runs (default: a
    third of the run's heartbeatTimeout, else 10 s); ``measurement_flush_interval`` is how long
    :meth:`RunHandle.measure` gathers points before sending them in one batch.

    Use it as a context manager, or call :meth:`close` at the end: that stops the heartbeats and
    sends the points gathered so far (also done at interpreter exit for a client left open).
    """

    def __init__(
        self,
        url: str = "http://localhost:4000/graphql",
        token: Optional[str] = None,
        *,
        retry: Optional[RetryPolicy] = None,
        heartbeat_interval: Optional[float] = None,
        measurement_flush_interval: float = 0.2,
    ):
        self.url = url
        self._transport = Transport(url, token, retry)
        self.heartbeat_interval = heartbeat_interval
        self.measurement_flush_interval = measurement_flush_interval
        self._handles: "weakref.WeakSet[RunHandle]" = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        # Points still gathered when the interpreter exits are sent then (no handle left behind).
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            client = ref()
            if client is not None:
                client.close()

        self._atexit = close_at_exit
        atexit.register(self._atexit)

    @classmethod
    def from_env(cls, **options: Any) -> "RunstateClient":
        """A client for ``RUNSTATE_URL`` (default http://localhost:4000/graphql) and
        ``RUNSTATE_TOKEN``, as the command line reads them."""
        return cls(
            os.environ.get("RUNSTATE_URL") or "http://localhost:4000/graphql",
            os.environ.get("RUNSTATE_TOKEN") or None,
            **options,
        )

    @property
    def transport(self) -> Transport:
        return self._transport

    def __enter__(self) -> "RunstateClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop every handle's heartbeats and send the measurements they gathered."""
        with self._handles_lock:
            handles = list(self._handles)
        for handle in handles:
            handle.close()
        atexit.unregister(self._atexit)

    # Runs.

    def create_run(
        self,
        project: str,
        *,
        name: Optional[str] = None,
        dialect: Optional[DialectLike] = None,
        tags: Optional[Sequence[str]] = None,
        meta: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        max_retries: Optional[int] = None,
        depends_on: Optional[Sequence[str]] = None,
        trigger: Optional[str] = None,
        dependencies: Optional[Sequence[Mapping[str, Any]]] = None,
        events: Optional[Sequence[Mapping[str, Any]]] = None,
        skip_on_upstream_skip: Optional[bool] = None,
        heartbeat_timeout: Optional[int] = None,
        queue_timeout: Optional[int] = None,
        cache_key: Optional[str] = None,
        rollup: Optional[bool] = None,
        scheduled_at: Optional[Union[datetime, str]] = None,
        parent_id: Optional[str] = None,
        op: Optional[str] = None,
        created_at: Optional[When] = None,
        attributes: Optional[Mapping[str, Any]] = None,
        **more: Any,
    ) -> "RunHandle":
        """Create a run (CREATED) and answer a handle on it.

        Retried safely: an idempotency key is made up when none is given, and every retry of
        this call sends the same one, so a create whose answer was lost makes one run. ``dialect``
        is the run's home dialect (``"PARSL"``...): its ``native_status`` and
        :meth:`RunHandle.transition` names are in it. ``dependencies`` are dicts
        ``{"ref": "ops.train", "when": ["FAILED"]}``, ``events`` dicts ``{"ref": ..., "kinds":
        [...]}``; any other CreateRunInput field the server knows may be passed in ``more``.

        ``attributes`` is a JSON object kept with the run and changed later with
        :meth:`RunHandle.update`. ``created_at`` records a run made elsewhere (an import): not
        more than 5 s ahead of the server's clock; its changes then take ``at=`` too.
        """
        fields = dict(
            project=project,
            name=name,
            dialect=dialect,
            tags=tags,
            meta=meta,
            max_retries=max_retries,
            depends_on=depends_on,
            trigger=trigger,
            dependencies=dependencies,
            events=events,
            skip_on_upstream_skip=skip_on_upstream_skip,
            heartbeat_timeout=heartbeat_timeout,
            queue_timeout=queue_timeout,
            cache_key=cache_key,
            rollup=rollup,
            scheduled_at=scheduled_at,
            parent_id=parent_id,
            op=op,
            created_at=created_at,
            attributes=dict(attributes) if attributes is not None else None,
            **more,
        )
        return self._create(_run_input(fields), idempotency_key)

    def _create(self, wire: Dict[str, Any], idempotency_key: Optional[str]) -> "RunHandle":
        # One key for every retry of this call (the transport resends the same body): a create
        # whose answer was lost is answered again, not made twice, nor refused as "op taken".
        wire["idempotencyKey"] = idempotency_key or wire.get("idempotencyKey") or _new_key()
        data = self._transport.request(
            f"mutation CreateRun($input: CreateRunInput!) {{ createRun(input: $input) {{ {RUN_FIELDS} }} }}",
            {"input": wire},
        )
        return self._open(Run.from_wire(data["createRun"]))

    def create_pipeline(
        self,
        project: str,
        steps: Sequence[Mapping[str, Any]],
        *,
        idempotency_key: Optional[str] = None,
        **parent: Any,
    ) -> Pipeline:
        """A parent run and its steps, by op, in the order given.

        ``create_pipeline("mnist", [{"op": "prepare"}, {"op": "train", "depends_on":
        ["ops.prepare"]}], rollup=True)``. Each step is a dict of :meth:`create_run`'s keyword
        arguments with an ``op``; it may refer only to the ops before it (``ops.<name>`` in
        depends_on, dependencies, events): any other ``ops.`` reference, a duplicate or a missing
        op raises RunstateError BAD_USER_INPUT (its ``field``: ``steps[1].dependsOn[0]``) before
        anything is created. Each step's idempotency key derives from the parent's, so calling
        again with the same ``idempotency_key`` answers the same runs and creates only those a
        failed call had not.
        """
        wire_steps = [_run_input(step) for step in steps]
        _check_step_order(wire_steps)
        key = idempotency_key or parent.pop("idempotencyKey", None) or _new_key()
        handle = self._create(_run_input({"project": project, **parent}), key)
        by_op: Dict[str, RunHandle] = {}
        for i, step in enumerate(wire_steps):
            op = step["op"]
            wire = {**step, "project": step.get("project") or handle.current.project, "parentId": handle.id}
            try:
                by_op[op] = self._create(wire, step.get("idempotencyKey") or _step_key(key, op))
            except RunstateError as error:
                # Say which step, and that the ones before it exist: the same call with the same
                # idempotency_key finishes the pipeline.
                extensions = dict(error.extensions)
                if error.field:
                    extensions["field"] = f"steps[{i}]." + re.sub(r"^input\.", "", error.field)
                extensions.update(parentId=handle.id, op=op)
                raise RunstateError(
                    f'step "{op}" (steps[{i}]) of pipeline {handle.id}: {error.message}',
                    error.code,
                    extensions,
                ) from error
        return Pipeline(parent=handle, steps=by_op)

    def run(self, run_id: str) -> "RunHandle":
        """A handle on an existing run, e.g. one a scheduler created for this worker
        (RunstateError NOT_FOUND when there is none)."""
        run = self._fetch_run(run_id)
        if run is None:
            raise RunstateError(f"no run {run_id}", "NOT_FOUND")
        return self._open(run)

    def run_by_op(self, parent_id: str, op: str) -> "RunHandle":
        """A handle on the step ``op`` of run ``parent_id`` (RunstateError NOT_FOUND when it has none)."""
        data = self._transport.request(
            f"""query RunByOp($parentId: ID!, $op: String!) {{
              runByOp(parentId: $parentId, op: $op) {{ {RUN_FIELDS} }} }}""",
            {"parentId": parent_id, "op": op},
        )
        if not data.get("runByOp"):
            raise RunstateError(f"run {parent_id} has no step {op}", "NOT_FOUND")
        return self._open(Run.from_wire(data["runByOp"]))

    def list_runs(
        self,
        filter: Optional[Mapping[str, Any]] = None,
        *,
        first: int = 50,
        after: Optional[str] = None,
        dialect: Optional[DialectLike] = None,
        order_by: Optional[Mapping[str, str]] = None,
        total_count: bool = False,
    ) -> RunPage:
        """One page of runs, newest created first.

        ``filter`` takes RunFilter's fields in snake_case or camelCase (``project``, ``statuses``,
        ``parent_id``, ``predicate={"dialect": "PARSL", "name": "final"}``...); ``native_status``
        is in ``dialect``, else each run's own; ``total_count=True`` also counts every run the
        filter matches. Pass the page's ``end_cursor`` as ``after`` for the next one.
        """
        data = self._transport.request(
            f"""query Runs($filter: RunFilter, $first: Int, $after: String, $dialect: Dialect,
              $orderBy: RunOrder) {{
              runs(filter: $filter, first: $first, after: $after, orderBy: $orderBy) {{
                edges {{ node {{ {RUN_FIELDS_IN_DIALECT} }} }} pageInfo {{ endCursor hasNextPage }}
                {"totalCount" if total_count else ""} }} }}""",
            {
                "filter": _filter(filter),
                "first": first,
                "after": after,
                "dialect": _dialect(dialect),
                "orderBy": (
                    {k: _status(v) for k, v in _camel_keys(order_by).items()} if order_by else None
                ),
            },
        )
        runs = data["runs"]
        return RunPage(
            runs=[Run.from_wire(edge["node"]) for edge in runs["edges"]],
            end_cursor=runs["pageInfo"]["endCursor"],
            has_next_page=runs["pageInfo"]["hasNextPage"],
            total_count=runs.get("totalCount"),
        )

    def iter_runs(
        self, filter: Optional[Mapping[str, Any]] = None, *, page_size: int = 100, **options: Any
    ) -> Iterator[Run]:
        """Every run the filter matches, page after page (options as :meth:`list_runs`)."""
        after = options.pop("after", None)
        while True:
            page = self.list_runs(filter, first=page_size, after=after, **options)
            yield from page.runs
            if not page.has_next_page or page.end_cursor is None:
                return
            after = page.end_cursor

    def watch(
        self,
        filter: Optional[Mapping[str, Any]] = None,
        *,
        after: Optional[str] = None,
        dialect: Optional[DialectLike] = None,
        on_reconnect: Optional[Callable[[ReconnectInfo], None]] = None,
        idle_timeout: float = 60.0,
    ) -> StatusChangeWatch:
        """Live status changes over server-sent events, resumed by themselves after a drop.

        ``filter`` takes StatusChangeFilter's fields (``run_ids``, ``projects``, ``statuses``,
        ``categories``, ``predicate``, ``parent_id``). ``after`` replays every matching change
        after that cursor first. ``native_to`` is in ``dialect``, else each run's own. Whenever
        the connection drops (or stays silent ``idle_timeout`` seconds: the server pings every
        12 s), it subscribes again after the last change it received: nothing missed, nothing
        twice. ``watch.cursor`` is where to resume another time.
        """
        return StatusChangeWatch(
            self._transport,
            _filter(filter),
            after=after,
            dialect=_dialect(dialect),
            on_reconnect=on_reconnect,
            idle_timeout=idle_timeout,
        )

    def request(
        self, query: str, variables: Optional[Mapping[str, Any]] = None, *, repeatable: bool = False
    ) -> Dict[str, Any]:
        """Any operation; answers its ``data``, raises RunstateError with the first error.

        It is retried only where the server surely did not run it (refused connection, 429, a
        draining instance's 503), unless ``repeatable=True`` says running it twice is harmless (a
        query, a mutation with an idempotency key).
        """
        return self._transport.request(query, variables, repeatable=repeatable)

    # Inside.

    def _fetch_run(self, run_id: str) -> Optional[Run]:
        data = self._transport.request(
            f"query Run($id: ID!) {{ run(id: $id) {{ {RUN_FIELDS} }} }}", {"id": run_id}
        )
        return Run.from_wire(data["run"]) if data.get("run") else None

    def _open(self, run: Run) -> "RunHandle":
        handle = RunHandle(self, run)
        with self._handles_lock:
            self._handles.add(handle)
        return handle


class RunHandle:
    """A worker's view of one run.

    Each method sends one request and updates :attr:`current`; a change the lifecycle refuses
    raises :class:`~runstate.TransitionRefusedError` (or, with :meth:`try_transition`, comes back
    as a value). While the run is running, heartbeats go out by themselves from a daemon thread;
    when someone else asks the run to stop, :attr:`stop_requested` turns true.
    """

    def __init__(self, client: RunstateClient, run: Run):
        self._client = client
        self._transport = client.transport
        self._lock = threading.RLock()
        self._current = run
        self.stop_requested = run.status == "STOPPING"
        self._closed = False
        self._beats: Optional[threading.Event] = None  # set to stop the heartbeat thread
        self.heartbeat_period: Optional[float] = None
        self._pending: List[Any] = []  # (point, future)
        self._flush_timer: Optional[threading.Timer] = None
        self._keep_alive()

    def __repr__(self) -> str:
        run = self._current
        return f"<RunHandle {run.id} {run.project}/{run.name or ''} {run.status} ({run.native_status})>"

    @property
    def id(self) -> str:
        return self._current.id

    @property
    def current(self) -> Run:
        """The run as last answered by the server."""
        return self._current

    # Pipelines.

    def step(self, op: str, **fields: Any) -> "RunHandle":
        """Create a step of this run named ``op`` (in this run's project unless told), with
        :meth:`RunstateClient.create_run`'s keyword arguments: its ``ops.<name>`` references
        resolve among this run's steps, so create the steps they name first."""
        project = fields.pop("project", None) or self._current.project
        return self._client.create_run(project, parent_id=self.id, op=op, **fields)

    # Reporting.

    def start(
        self,
        *,
        outcome: Optional[str] = None,
        exit_code: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        at: Optional[When] = None,
    ) -> Run:
        """RUNNING (heartbeats start). ``outcome``, ``exit_code``, ``meta`` and ``at`` as for
        :meth:`succeed`."""
        return self._send({"to": "RUNNING", **_record(outcome, exit_code, meta, at)})

    def progress(self, progress: float, phase: Optional[str] = None) -> Run:
        """Progress in [0, 1], with an optional phase (else the last one stays); a repeated report
        changes nothing more."""
        data = self._transport.request(
            f"""mutation Progress($input: ReportProgressInput!) {{
              reportProgress(input: $input) {{ {RUN_FIELDS} }} }}""",
            {
                "input": {
                    "id": self.id,
                    "progress": progress,
                    "attempt": self._current.attempt,
                    # Left out when not given: the phase stays (an explicit null would clear it).
                    **({"phase": phase} if phase is not None else {}),
                }
            },
        )
        return self._update(Run.from_wire(data["reportProgress"]))

    def measure(self, name: str, value: Any, step: Optional[int] = None) -> "Future[None]":
        """A point of a series: a number (sent as ``value``), or any other JSON value, a string,
        a bool, a dict or a list (sent as ``data``; at most 16 KB as JSON). Points are gathered
        and sent in one batch after the client's ``measurement_flush_interval`` (or at once when
        1,000 wait), with an idempotency key. Answers a Future that is done once this point is
        stored (``.result()`` raises if its batch could not be sent); ignoring it is fine.
        ValueError for None, TypeError for what JSON cannot hold, at once."""
        future: "Future[None]" = Future()
        point = {"name": name, **_point_value(value), "step": step, "at": _now()}
        with self._lock:
            self._pending.append((point, future))
            full = len(self._pending) >= MEASUREMENT_BATCH
            if not full and self._flush_timer is None:
                self._flush_timer = threading.Timer(
                    self._client.measurement_flush_interval, self._flush_quietly
                )
                self._flush_timer.daemon = True
                self._flush_timer.name = f"runstate-measurements-{self.id[:8]}"
                self._flush_timer.start()
        if full:
            self._flush_quietly()  # in the caller's thread: a fast producer waits for the batch
        return future

    def flush(self) -> None:
        """Send the points gathered so far now (raises if the batch could not be sent)."""
        with self._lock:
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            # One key per batch: a retry after a lost answer records the points once.
            self._transport.request(
                """mutation Measure($input: RecordMeasurementsInput!) {
                  recordMeasurements(input: $input) }""",
                {
                    "input": {
                        "runId": self.id,
                        "measurements": [point for point, _ in batch],
                        "idempotencyKey": _new_key(),
                    }
                },
            )
        except BaseException as error:
            for _, future in batch:
                future.set_exception(error)
            raise
        for _, future in batch:
            future.set_result(None)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            pass  # each point's future holds the error

    def succeed(
        self,
        message: Optional[str] = None,
        *,
        outcome: Optional[str] = None,
        exit_code: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        at: Optional[When] = None,
    ) -> Run:
        """SUCCEEDED, after the points gathered so far (heartbeats stop).

        Every status change takes these too: ``outcome`` (free text, upper case by convention:
        ``"PASS"``, ``"DIFF"``, ``"TIMEOUT"``; up to 50 characters) and ``exit_code`` (the
        worker's), recorded with the change and, for a change that ends the run, on the run
        (``current.outcome``, ``current.exit_code``); ``meta``, a JSON object recorded with the
        change (up to 16 KB); ``at``, when it happened elsewhere (an import): not before the run's
        last change, at most 5 s ahead; default now.
        """
        self.flush()
        return self._send({"to": "SUCCEEDED", "message": message, **_record(outcome, exit_code, meta, at)})

    def fail(
        self,
        message: str,
        *,
        outcome: Optional[str] = None,
        exit_code: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        at: Optional[When] = None,
    ) -> Run:
        """FAILED with a message (heartbeats stop); ``outcome``, ``exit_code``, ``meta`` and ``at``
        as for :meth:`succeed`. The failure matters more than the last points: it is sent even
        when they could not be."""
        self._flush_quietly()
        return self._send({"to": "FAILED", "message": message, **_record(outcome, exit_code, meta, at)})

    def stop(self, message: Optional[str] = None) -> Run:
        """STOPPED, or STOPPING when the run was handed to an executor (heartbeats stop).

        Retried safely: a retry that finds the run already stopped (the first try's answer was
        lost, or someone else stopped it) answers the stopped run."""
        self._flush_quietly()
        if self._current.status == "STOPPING":
            return self._send({"to": "STOPPED", "message": message})
        data = self._transport.request(
            f"""mutation Stop($id: ID!, $message: String) {{
              stopRun(id: $id, message: $message) {{ {TRANSITION_RESULT_FIELDS} }} }}""",
            {"id": self.id, "message": message},
        )
        result = transition_result_from_wire(data["stopRun"])
        if isinstance(result, TransitionAccepted):
            return self._update(result.run)
        if getattr(result, "from_", None) in ("STOPPED", "STOPPING"):
            again = self._client._fetch_run(self.id)
            return self._update(again) if again else self._current
        raise TransitionRefusedError(result)

    def transition(
        self,
        native: str,
        *,
        dialect: Optional[DialectLike] = None,
        message: Optional[str] = None,
        reason: Optional[str] = None,
        outcome: Optional[str] = None,
        exit_code: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        at: Optional[When] = None,
    ) -> Run:
        """A status by its native name (``"launched"``, ``"exec_done"`` for Parsl), in the run's
        dialect or ``dialect``; fenced by attempt and retried safely with one idempotency key.
        ``outcome``, ``exit_code``, ``meta`` and ``at`` as for :meth:`succeed` (a native name's
        own outcome, Canary's ``diffed``, wins over ``outcome``).

        A refused move raises TransitionRefusedError; a name the dialect does not know raises
        RunstateError BAD_USER_INPUT (its ``field`` and the names ``allowed``), and nothing
        changes. The points gathered so far are sent first.
        """
        self._flush_quietly()
        return self._send(
            {
                "native": native,
                "dialect": _dialect(dialect),
                "message": message,
                "reason": reason,
                **_record(outcome, exit_code, meta, at),
            }
        )

    def try_transition(
        self,
        native: Optional[str] = None,
        *,
        to: Optional[str] = None,
        dialect: Optional[DialectLike] = None,
        message: Optional[str] = None,
        reason: Optional[str] = None,
        outcome: Optional[str] = None,
        exit_code: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        at: Optional[When] = None,
    ) -> TransitionResult:
        """As :meth:`transition` (or a runstate status with ``to=``), but the server's typed answer
        comes back as a value: TransitionAccepted (``.run``), or IllegalTransition (``.allowed``),
        TransitionConflict or RunNotFound, each with ``.accepted`` False and ``.message``."""
        if (native is None) == (to is None):
            raise ValueError("give exactly one of native and to")
        self._flush_quietly()
        target = {"native": native, "dialect": _dialect(dialect)} if native is not None else {"to": _status(to)}
        result = self._transition(
            dict(target, message=message, reason=reason, **_record(outcome, exit_code, meta, at))
        )
        if isinstance(result, TransitionAccepted):
            return TransitionAccepted(run=self._update(result.run))
        return result

    def update(
        self,
        *,
        name: Optional[str] = _UNSET,
        tags: Optional[Sequence[str]] = None,
        meta: Optional[Mapping[str, Any]] = _UNSET,
        attributes: Optional[Mapping[str, Any]] = None,
        expected_revision: Optional[int] = None,
    ) -> Run:
        """Change the run's records after creation; answers the run (its revision one up).

        ``name``, ``tags`` and ``meta`` replace what the run has (``name=None`` or ``meta=None``
        clears it); ``attributes`` is merged into the run's, key by key, and a key set to None is
        removed. Arguments left out are left alone; at least one is needed.

        ``expected_revision`` makes it a compare-and-set: nothing is written unless the run is
        still at that revision (``run.current.revision`` as last read), else
        :class:`~runstate.RevisionConflictError` (with ``expected_revision`` and
        ``actual_revision``). Without it, an update whose answer was lost is sent again (the same
        values again change nothing more); with it, it is not (the retry would conflict with the
        first try): RunstateUnavailableError says it may or may not have been written.
        """
        changes: Dict[str, Any] = {}
        if name is not _UNSET:
            changes["name"] = name
        if tags is not None:
            changes["tags"] = list(tags)
        if meta is not _UNSET:
            changes["meta"] = dict(meta) if meta is not None else None
        if attributes is not None:
            changes["attributes"] = dict(attributes)
        if not changes:
            raise ValueError("give at least one of name, tags, meta and attributes")
        if expected_revision is not None:
            changes["expectedRevision"] = expected_revision
        data = self._transport.request(
            f"""mutation Update($input: UpdateRunInput!) {{
              updateRun(input: $input) {{ {RUN_FIELDS} }} }}""",
            {"input": {"id": self.id, **changes}},
            repeatable=expected_revision is None,
        )
        return self._update(Run.from_wire(data["updateRun"]))

    def history(self, dialect: Optional[DialectLike] = None) -> List[StatusChange]:
        """The run's status changes, oldest first, including its creation (``native_to`` in
        ``dialect``, else the run's own)."""
        changes: List[StatusChange] = []
        after: Optional[str] = None
        while True:
            data = self._transport.request(
                f"""query History($id: ID!, $after: String, $dialect: Dialect) {{ run(id: $id) {{
                  statusHistory(first: 500, after: $after) {{
                    edges {{ node {{ {STATUS_CHANGE_FIELDS} }} }} pageInfo {{ endCursor hasNextPage }}
                  }} }} }}""",
                {"id": self.id, "after": after, "dialect": _dialect(dialect)},
            )
            if not data.get("run"):
                raise RunstateError(f"no run {self.id}", "NOT_FOUND")
            page = data["run"]["statusHistory"]
            changes += [StatusChange.from_wire(edge["node"]) for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return changes
            after = page["pageInfo"]["endCursor"]

    def refresh(self) -> Run:
        """The run as the server has it now."""
        run = self._client._fetch_run(self.id)
        if run is None:
            raise RunstateError(f"no run {self.id}", "NOT_FOUND")
        return self._update(run)

    def close(self) -> None:
        """Stop the heartbeats and send the points gathered so far (the run itself is left as is)."""
        with self._lock:
            self._closed = True
        self._stop_heartbeats()
        self._flush_quietly()

    # Inside.

    def _transition(self, target: Dict[str, Any]) -> TransitionResult:
        data = self._transport.request(
            f"""mutation Transition($input: TransitionRunInput!) {{
              transitionRun(input: $input) {{ {TRANSITION_RESULT_FIELDS} }} }}""",
            {
                "input": {
                    "id": self.id,
                    **{k: v for k, v in target.items() if v is not None},
                    "attempt": self._current.attempt,
                    # The same key on every retry: a change that committed but whose answer was
                    # lost is answered again, not made twice.
                    "idempotencyKey": _new_key(),
                }
            },
        )
        return transition_result_from_wire(data["transitionRun"])

    def _send(self, target: Dict[str, Any]) -> Run:
        result = self._transition(target)
        if isinstance(result, TransitionAccepted):
            return self._update(result.run)
        raise TransitionRefusedError(result)

    def _update(self, run: Run) -> Run:
        with self._lock:
            # Answers can cross (a heartbeat sent before succeed() answered after it): keep the
            # newest, by revision (every status, progress and heartbeat change adds one).
            if (run.revision, run.version) < (self._current.revision, self._current.version):
                return self._current
            self._current = run
            if run.status == "STOPPING":
                self.stop_requested = True
        self._keep_alive()
        return run

    def _keep_alive(self) -> None:
        """Heartbeats while the run is in the RUNNING category; none otherwise or once closed."""
        with self._lock:
            run = self._current
            if self._closed or not run.is_running or run.is_done:
                self._stop_heartbeats()
                return
            if self._beats is not None:
                return
            period = self._client.heartbeat_interval
            if period is None:
                period = max(0.1, run.heartbeat_timeout / 3) if run.heartbeat_timeout else 10.0
            self.heartbeat_period = period
            self._beats = threading.Event()
            thread = threading.Thread(
                target=self._beat_loop,
                args=(self._beats, period),
                name=f"runstate-heartbeat-{run.id[:8]}",
                daemon=True,  # the work keeps the process alive, not its heartbeats
            )
            thread.start()

    def _beat_loop(self, stop: threading.Event, period: float) -> None:
        while not stop.wait(period):
            try:
                # No retries, and no longer than a period: a late beat is worth less than the next.
                data = self._transport.request(
                    f"mutation Beat($id: ID!, $attempt: Int) {{ heartbeat(id: $id, attempt: $attempt) {{ {RUN_FIELDS} }} }}",
                    {"id": self.id, "attempt": self._current.attempt},
                    retries=0,
                    timeout=max(period, 2.0),
                )
            except Exception:
                continue  # the next beat tries again; the server's timeout is several periods
            if stop.is_set():
                return
            self._update(Run.from_wire(data["heartbeat"]))

    def _stop_heartbeats(self) -> None:
        with self._lock:
            if self._beats is not None:
                self._beats.set()
            self._beats = None

