"""Domain errors. Handlers raise them; the gateway maps them to userErrors."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """A business rule refused the command. ``code`` is a contract UserErrorCode."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, field: Sequence[str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = list(field) if field is not None else None
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class VersionConflict(DomainError):
    """The stream moved past the version the caller expected."""

    code = "VERSION_CONFLICT"


class InvalidStateTransition(DomainError):
    code = "INVALID_STATE_TRANSITION"


class ValidationErrors(DomainError):
    """Several field errors at once; ``errors`` holds each one."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(e.message for e in errors), None, errors[0].code if errors else None)
        self.errors = list(errors)
