"""The assist package's errors."""

from __future__ import annotations

from plaza.errors import InvalidInputError, PlazaError


class AssistError(PlazaError):
    """Something went wrong in an assist job."""

    code = "AssistError"
    status = 400


class BackendUnavailableError(AssistError):
    """The chosen language-model backend cannot be used (not installed, not configured,
    or its server did not answer)."""

    code = "AssistBackendUnavailable"
    status = 503


class ModelOutputError(AssistError):
    """The model's output is not JSON, or not valid against the job's schema."""

    code = "AssistModelOutput"
    status = 502


class CitationError(AssistError):
    """An answer cites a ledger record that does not exist or was not retrieved."""

    code = "AssistCitation"
    status = 502


class EvalCaseError(AssistError, InvalidInputError):
    """A line of an evaluation case file is malformed."""

    code = "InvalidEvalCase"
    status = 400
