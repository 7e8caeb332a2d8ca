"""The failure taxonomy. The class decides what happens next; `reason` names it in logs and metrics."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every failure the pipeline knows how to handle."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class InvalidPayloadError(PipelineError):
    """The body is not a usable event: quarantined as `invalid`, never retried (replayable after a fix)."""

    reason = "invalid_payload"

    def __init__(self, message: str, messages: object, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.messages = messages


class DesignerPayloadError(InvalidPayloadError):
    """A JSON object that is not a standard event (no envelope, or a reshaped `data`): what a distribution's
    Payload designer sends. From a distribution endpoint it is ignored or forwarded, not quarantined."""

    reason = "payload_designer"


class TransientError(PipelineError):
    """Worth retrying later: timeouts, connection errors, 5xx and 429 from a downstream."""

    reason = "transient"

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentError(PipelineError):
    """Retrying cannot help (a 4xx from a downstream, a refused recipient): recorded, not retried."""

    reason = "permanent"
