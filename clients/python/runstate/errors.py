"""The exceptions the client raises."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "RunstateException",
    "RunstateError",
    "TransitionRefusedError",
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
