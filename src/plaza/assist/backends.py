"""Language-model backends for the assist jobs: none, local, openai.

A :class:`Backend` turns a system prompt and a user prompt into the model's raw text.
Nothing it returns is trusted: every job parses the text, validates it against its
JSON Schema and puts any action it implies through the mandate guard
(:mod:`plaza.assist.model`). Backends hold no signing key and are given none.

- ``none`` (:class:`TemplateBackend`): no model. Jobs see ``backend.name == "none"``
  and use their deterministic templates; :meth:`TemplateBackend.complete` is never
  needed and refuses to be called.
- ``openai`` (:class:`OpenAIBackend`): any server speaking the OpenAI chat-completions
  API (``POST {base}/chat/completions``). ``PLAZA_ASSIST_BASE_URL`` (e.g.
  ``http://127.0.0.1:8080/v1``), ``PLAZA_ASSIST_API_KEY`` (optional bearer token) and
  ``PLAZA_ASSIST_MODEL`` come from the environment. With a schema it asks for
  ``response_format: {"type": "json_schema", ...}``.
- ``local``: llama-cpp-python with a GGUF model (``plaza.assist.local``, the optional
  ``local`` extra), loaded lazily.
- ``auto``: ``local`` when it is installed and its model file is found, else ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import httpx

from plaza.assist.errors import AssistError, BackendUnavailableError

BACKENDS: Final = ("none", "local", "openai", "auto")
_TIMEOUT_S: Final = 60.0


class Backend(Protocol):
    """A language model: raw text out for a system and a user prompt."""

    name: str  # "none" | "local" | "openai"

    def complete(
        self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        """The model's raw answer; with ``schema``, constrained to (or asked for) JSON
        valid against it. The caller validates it all the same."""
        ...


class TemplateBackend:
    """No model: the jobs' deterministic templates do the work."""

    name = "none"

    def complete(
        self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        raise AssistError("the 'none' backend has no model: jobs use their templates")


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions server, over HTTP."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = _TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendUnavailableError(
                f"PLAZA_ASSIST_BASE_URL must be an http(s) URL, not {base_url[:80]!r}"
            )
        if not model:
            raise BackendUnavailableError("PLAZA_ASSIST_MODEL names no model")
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OpenAIBackend:
        base = env.get("PLAZA_ASSIST_BASE_URL", "")
        if not base:
            raise BackendUnavailableError(
                "--assist openai needs PLAZA_ASSIST_BASE_URL (and PLAZA_ASSIST_MODEL)"
            )
        return cls(base, env.get("PLAZA_ASSIST_MODEL", ""), env.get("PLAZA_ASSIST_API_KEY"))

    def close(self) -> None:
        self._client.close()

    def complete(
        self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": True},
            }
        try:
            resp = self._client.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"assist server {self.base_url}: {exc}") from exc
        if resp.status_code != 200:
            raise BackendUnavailableError(
                f"assist server {self.base_url} answered HTTP {resp.status_code}"
            )
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendUnavailableError(
                f"assist server {self.base_url} sent no chat completion"
            ) from exc
        if not isinstance(content, str):
            raise BackendUnavailableError(f"assist server {self.base_url} sent no text")
        return content


def _local_available() -> bool:
    try:
        from plaza.assist import local  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return False
    return bool(local.available())


def make_backend(name: str, env: Mapping[str, str]) -> Backend:
    """The backend called ``name`` (one of :data:`BACKENDS`), configured from ``env``."""
    if name == "auto":
        name = "local" if _local_available() else "none"
    if name == "none":
        return TemplateBackend()
    if name == "openai":
        return OpenAIBackend.from_env(env)
    if name == "local":
        try:
            from plaza.assist.local import (  # type: ignore[import-not-found, unused-ignore]
                LocalBackend,
            )
        except ImportError as exc:
            raise BackendUnavailableError(
                "--assist local needs the 'local' extra: pip install 'plaza[local]'"
            ) from exc
        backend: Backend = LocalBackend.load(env)
        return backend
    raise AssistError(f"unknown assist backend {name!r}: use one of {', '.join(BACKENDS)}")
