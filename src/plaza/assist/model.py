"""One job's call to a model: prompt, complete, parse, validate, retry once, fall back.

:func:`run` is the only way a job uses a backend. With the ``none`` backend it returns
the job's deterministic template. Otherwise it sends the prompt with the output's JSON
Schema, parses the raw text as one JSON object, validates it against the job's
pydantic model (the same schema: extra fields forbidden, strict types) and runs the
job's own check (numbers not in the facts, citations of records that do not exist).
A job whose output is one string (``text_field``) asks for plain text instead, with no
schema to decode against (a grammar costs a small model several times the time per
token), and the text is wrapped as that field before the same validation.
Invalid output is retried once; if the second answer is invalid too, or the backend
is unreachable, the template answers and the result says it fell back, and why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from plaza.assist.backends import Backend
from plaza.assist.errors import BackendUnavailableError, CitationError, ModelOutputError

MAX_OUTPUT_CHARS: Final = 16_000
ATTEMPTS: Final = 2

T = TypeVar("T", bound="Output")


class Output(BaseModel):
    """Base of every job's output model: frozen, strict, no extra fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @classmethod
    def output_schema(cls) -> dict[str, Any]:
        """The JSON Schema a backend is asked to follow."""
        out: dict[str, Any] = cls.model_json_schema()
        return out


@dataclass(frozen=True)
class Run(Generic[T]):
    """What a job got: the output, where it came from (``template``, ``model`` or
    ``fallback``), how many model calls it made, the errors of the rejected ones, and
    the seconds it took."""

    value: T
    source: str
    attempts: int = 0
    errors: tuple[str, ...] = field(default=())
    latency_s: float = 0.0

    @property
    def fell_back(self) -> bool:
        return self.source == "fallback"


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and text.count("```") == 2:
        body = text[3:-3]
        return body.split("\n", 1)[1] if "\n" in body else body
    return text


def parse(text: str, model: type[T]) -> T:
    """``text`` as one JSON object valid against ``model``, or :class:`ModelOutputError`."""
    if len(text) > MAX_OUTPUT_CHARS:
        raise ModelOutputError(f"model output of {len(text)} characters is too long")
    try:
        value = json.loads(_strip_fence(text))
    except ValueError as exc:
        raise ModelOutputError(f"model output is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ModelOutputError("model output is not a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(object)"
        raise ModelOutputError(f"model output invalid at {where}: {first['msg']}") from exc


def run(
    backend: Backend,
    *,
    system: str,
    user: str,
    model: type[T],
    template: Callable[[], T],
    check: Callable[[T], None] | None = None,
    max_tokens: int = 300,
    text_field: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Run[T]:
    """Run one job on ``backend`` (see the module docstring)."""
    start = clock()
    if backend.name == "none":
        return Run(template(), "template", 0, (), clock() - start)
    errors: list[str] = []
    attempts = 0
    for _ in range(ATTEMPTS):
        attempts += 1
        try:
            schema = None if text_field else model.output_schema()
            text = backend.complete(system, user, schema=schema, max_tokens=max_tokens)
            if text_field:
                text = json.dumps({text_field: text.strip()})
        except BackendUnavailableError as exc:
            errors.append(f"{exc.code}: {exc.message}")
            break
        try:
            value = parse(text, model)
            if check is not None:
                check(value)
        except (ModelOutputError, CitationError) as exc:
            errors.append(f"{exc.code}: {exc.message}")
            continue
        return Run(value, "model", attempts, tuple(errors), clock() - start)
    return Run(template(), "fallback", attempts, tuple(errors), clock() - start)
