"""Backends: none, openai against a real OpenAI-compatible HTTP server, and the choice
by name and environment."""

from __future__ import annotations

import pytest

from plaza.assist.backends import OpenAIBackend, TemplateBackend, make_backend
from plaza.assist.errors import AssistError, BackendUnavailableError
from tests.assist.conftest import FakeModel

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}


def test_none_is_the_template_backend_and_has_no_model() -> None:
    backend = make_backend("none", {})
    assert isinstance(backend, TemplateBackend) and backend.name == "none"
    with pytest.raises(AssistError):
        backend.complete("s", "u", schema=None, max_tokens=10)


def test_auto_without_the_local_extra_is_none() -> None:
    try:
        import plaza.assist.local  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        assert make_backend("auto", {}).name == "none"
    else:  # with the extra, auto picks local exactly when its model is available
        from plaza.assist import local  # type: ignore[attr-defined, unused-ignore]

        assert make_backend("auto", {}).name == ("local" if local.available() else "none")


def test_openai_needs_its_environment_and_an_http_url() -> None:
    with pytest.raises(BackendUnavailableError, match="PLAZA_ASSIST_BASE_URL"):
        make_backend("openai", {})
    with pytest.raises(BackendUnavailableError, match="http"):
        make_backend("openai", {"PLAZA_ASSIST_BASE_URL": "file:///x", "PLAZA_ASSIST_MODEL": "m"})
    with pytest.raises(BackendUnavailableError, match="no model"):
        make_backend("openai", {"PLAZA_ASSIST_BASE_URL": "http://127.0.0.1:1/v1"})
    with pytest.raises(AssistError, match="unknown assist backend"):
        make_backend("gpt", {})


def test_openai_asks_for_json_against_the_schema_with_the_key(fake_model: FakeModel) -> None:
    fake_model.will_answer('{"x": 1}')
    env = {
        "PLAZA_ASSIST_BASE_URL": f"{fake_model.url}/v1",
        "PLAZA_ASSIST_MODEL": "fake-model",
        "PLAZA_ASSIST_API_KEY": "sk-test",
    }
    backend = make_backend("openai", env)
    assert isinstance(backend, OpenAIBackend)
    assert backend.complete("sys", "user", schema=SCHEMA, max_tokens=50) == '{"x": 1}'
    sent = fake_model.requests[-1]
    assert sent["model"] == "fake-model" and sent["max_tokens"] == 50
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "user"},
    ]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert fake_model.headers[-1]["authorization"] == "Bearer sk-test"
    backend.complete("sys", "user", schema=None, max_tokens=5)
    assert "response_format" not in fake_model.requests[-1]


def test_openai_server_failures_are_backend_unavailable(fake_model: FakeModel) -> None:
    backend = fake_model.backend()
    fake_model.will_answer("HTTP 500")
    with pytest.raises(BackendUnavailableError, match="HTTP 500"):
        backend.complete("s", "u", schema=None, max_tokens=5)
    dead = OpenAIBackend("http://127.0.0.1:9/v1", "m", timeout_s=2)
    with pytest.raises(BackendUnavailableError, match="assist server"):
        dead.complete("s", "u", schema=None, max_tokens=5)
