"""runstate's Python client for workers and tools (standard library only).

    from runstate import RunstateClient

    with RunstateClient("http://localhost:4000/graphql", token) as runstate:
        run = runstate.create_run("vision", name="resnet-50")
        run.start()                  # RUNNING; heartbeats go out by themselves from now on
        run.progress(0.5, "epoch 5")
        run.measure("loss", 0.31, step=5)  # batched
        run.succeed()
"""

from .client import Pipeline, RunHandle, RunstateClient
from .errors import (
    RevisionConflictError,
    RunstateError,
    RunstateException,
    RunstateUnavailableError,
    TransitionRefusedError,
)
from .models import (
    Dialect,
    IllegalTransition,
    Run,
    RunNotFound,
    RunPage,
    StatusChange,
    TransitionAccepted,
    TransitionConflict,
    TransitionResult,
)
from .transport import RetryPolicy
from .watch import ReconnectInfo, StatusChangeWatch

__version__ = "0.1.0"

__all__ = [
    "RunstateClient",
    "RunHandle",
    "Pipeline",
    "RetryPolicy",
    "StatusChangeWatch",
    "ReconnectInfo",
    "Dialect",
    "Run",
    "RunPage",
    "StatusChange",
    "TransitionResult",
    "TransitionAccepted",
    "IllegalTransition",
    "TransitionConflict",
    "RunNotFound",
    "RunstateException",
    "RunstateError",
    "TransitionRefusedError",
    "RevisionConflictError",
    "RunstateUnavailableError",
]
