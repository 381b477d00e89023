"""The exceptions the client raises."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "RunstateException",
    "RunstateError",
    "TransitionRefusedError",
    "RevisionConflictError",
    "RunstateUnavailableError",
]


class RunstateException(Exception):
    """The base of every exception this client raises."""


class RunstateError(RunstateException):
    """A GraphQL error the server answered with: its message and ``extensions.code``.

    ``code`` is BAD_USER_INPUT, NOT_FOUND, FORBIDDEN, UNAUTHENTICATED, RATE_LIMITED, LIMIT_EXCEEDED,
    HTTP_ERROR (an answer that was no GraphQL answer)...
    """

    def __init__(self, message: str, code: str, extensions: Optional[Mapping[str, Any]] = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extensions: Dict[str, Any] = dict(extensions or {})

    @property
    def field(self) -> Optional[str]:
        """For BAD_USER_INPUT: the input field at fault (``extensions.field``, e.g. ``input.native``)."""
        field = self.extensions.get("field")
        return field if isinstance(field, str) else None

    @property
    def allowed(self) -> Optional[List[str]]:
        """For BAD_USER_INPUT: what the field accepts (``extensions.allowed``: a dialect's names)."""
        allowed = self.extensions.get("allowed")
        return [str(a) for a in allowed] if isinstance(allowed, list) else None

    def __repr__(self) -> str:
        return f"RunstateError({self.message!r}, code={self.code!r})"


class RevisionConflictError(RunstateError):
    """An update's compare-and-set lost (code REVISION_CONFLICT): the run was not at
    ``expected_revision`` but at ``actual_revision`` (someone changed it since it was read), and
    nothing was written. Read the run again (:meth:`~runstate.RunHandle.refresh`) and decide.
    """

    def __init__(self, message: str, code: str = "REVISION_CONFLICT", extensions: Optional[Mapping[str, Any]] = None):
        super().__init__(message, code, extensions)

    @property
    def expected_revision(self) -> Optional[int]:
        """The revision the update was made against (``extensions.expectedRevision``)."""
        return _int_or_none(self.extensions.get("expectedRevision"))

    @property
    def actual_revision(self) -> Optional[int]:
        """The run's revision when the update arrived (``extensions.actualRevision``)."""
        return _int_or_none(self.extensions.get("actualRevision"))

    def __repr__(self) -> str:
        return (
            f"RevisionConflictError(expected_revision={self.expected_revision!r}, "
            f"actual_revision={self.actual_revision!r})"
        )


def _int_or_none(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TransitionRefusedError(RunstateException):
    """A status change the server refused: IllegalTransition, TransitionConflict or RunNotFound.

    ``result`` is the server's typed answer (an :class:`~runstate.IllegalTransition`,
    :class:`~runstate.TransitionConflict` or :class:`~runstate.RunNotFound`), ``kind`` its type
    name and ``details`` the answer as the server sent it (camelCase keys). Nothing was written.
    """

    def __init__(self, result: Any):
        super().__init__(result.message)
        self.result = result
        self.kind: str = result.kind
        self.details: Dict[str, Any] = dict(result.raw)


class RunstateUnavailableError(RunstateException):
    """The server could not be reached, or kept failing, after every retry.

    For an operation that is not safe to repeat, it may or may not have run: the message says so.
    """
