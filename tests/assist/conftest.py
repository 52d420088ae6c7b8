"""A real OpenAI-compatible chat-completions server for the assist tests.

A tiny Starlette app served by uvicorn on a free port (``plaza.services.runner``): it
answers ``POST /v1/chat/completions`` with the next canned completion a test queued —
adversarial ones: not JSON, an extra action, a label outside the mandate, a fake
citation — and keeps every request body, so tests see exactly what the model was sent.
``"HTTP 500"`` answers with that status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plaza.assist.backends import OpenAIBackend
from plaza.services.runner import ServedApp, ServerThread


@dataclass
class FakeModel:
    """The server's state: completions to send (the last one repeats) and requests seen."""

    url: str = ""
    replies: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def will_answer(self, *replies: str | dict[str, Any]) -> None:
        self.replies = [r if isinstance(r, str) else json.dumps(r) for r in replies]

    def backend(self, api_key: str | None = None) -> OpenAIBackend:
        return OpenAIBackend(f"{self.url}/v1", "fake-model", api_key)

    def user_prompts(self) -> list[str]:
        return [str(r["messages"][1]["content"]) for r in self.requests]


def _app(model: FakeModel) -> Starlette:
    async def complete(request: Request) -> JSONResponse:
        body = await request.json()
        model.requests.append(body)
        model.headers.append(dict(request.headers))
        reply = model.replies.pop(0) if len(model.replies) > 1 else model.replies[0]
        if reply == "HTTP 500":
            return JSONResponse({"error": "boom"}, status_code=500)
        return JSONResponse(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}
        )

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeModel]:
    model = FakeModel()
    with ServerThread([ServedApp("fake-openai", _app(model))]) as (url,):
        model.url = url
        yield model


@pytest.fixture
def fake_model(_server: FakeModel) -> FakeModel:
    _server.replies = ['{"not": "configured"}']
    _server.requests.clear()
    _server.headers.clear()
    return _server
