"""Language models in the agents' loop, never past the guard (issue 19).

Four jobs — :mod:`~plaza.assist.explain`, :mod:`~plaza.assist.triage`,
:mod:`~plaza.assist.draft`, :mod:`~plaza.assist.ask` — each with a JSON Schema for its
output, a deterministic template (backend ``none``) and a model path
(:mod:`~plaza.assist.model`: prompt, parse, validate, retry once, fall back). User
text reaches a model only as quoted data (:mod:`~plaza.assist.quoting`); any action
a model implies goes through the mandate guard; every citation names a ledger record
that exists. No code here receives a signing key. See docs/assist.md.
"""

from plaza.assist.backends import BACKENDS, Backend, OpenAIBackend, TemplateBackend, make_backend
from plaza.assist.errors import (
    AssistError,
    BackendUnavailableError,
    CitationError,
    EvalCaseError,
    ModelOutputError,
)

__all__ = [
    "BACKENDS",
    "AssistError",
    "Backend",
    "BackendUnavailableError",
    "CitationError",
    "EvalCaseError",
    "ModelOutputError",
    "OpenAIBackend",
    "TemplateBackend",
    "make_backend",
]
