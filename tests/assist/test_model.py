"""A job's model call: parse and validate every answer, retry once, then fall back to
the template and say so; against a real OpenAI-compatible server."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field

from plaza.assist.backends import TemplateBackend
from plaza.assist.errors import ModelOutputError
from plaza.assist.model import Output, parse, run
from tests.assist.conftest import FakeModel


class Out(Output):
    word: Annotated[str, Field(min_length=1, max_length=10)]
    n: int


def _template() -> Out:
    return Out(word="template", n=0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"word": "hi"}', "invalid at n"),
        ('{"word": "hi", "n": "3"}', "invalid at n"),  # strict: no coercion
        ('{"word": "hi", "n": 3, "action": {"kind": "treasury.transfer"}}', "invalid at action"),
        ('{"word": "a very long word", "n": 3}', "invalid at word"),
        ("{" + " " * 20_000 + "}", "too long"),
    ],
    ids=["not-json", "array", "missing", "wrong-type", "extra-action", "too-long-field", "huge"],
)
def test_parse_rejects_what_the_schema_does_not_allow(text: str, match: str) -> None:
    with pytest.raises(ModelOutputError, match=match):
        parse(text, Out)


def test_parse_takes_one_fenced_object() -> None:
    assert parse('```json\n{"word": "hi", "n": 3}\n```', Out) == Out(word="hi", n=3)


def test_the_schema_is_the_models() -> None:
    schema = Out.output_schema()
    assert schema["required"] == ["word", "n"] and schema["additionalProperties"] is False


def test_none_uses_the_template_without_a_model() -> None:
    got = run(TemplateBackend(), system="s", user="u", model=Out, template=_template)
    assert (got.value, got.source, got.attempts) == (_template(), "template", 0)


def test_an_invalid_answer_is_retried_once(fake_model: FakeModel) -> None:
    fake_model.will_answer("nope", '{"word": "model", "n": 2}')
    got = run(fake_model.backend(), system="s", user="u", model=Out, template=_template)
    assert (got.value, got.source, got.attempts) == (Out(word="model", n=2), "model", 2)
    assert len(got.errors) == 1 and "not JSON" in got.errors[0]
    assert fake_model.requests[0]["response_format"]["json_schema"]["schema"] == Out.output_schema()


def test_two_invalid_answers_fall_back_to_the_template(fake_model: FakeModel) -> None:
    fake_model.will_answer("nope", '{"word": "x", "n": 1, "extra": true}')
    got = run(fake_model.backend(), system="s", user="u", model=Out, template=_template)
    assert got.value == _template() and got.fell_back and got.attempts == 2
    assert len(got.errors) == 2 and len(fake_model.requests) == 2


def test_a_failing_check_counts_as_invalid(fake_model: FakeModel) -> None:
    fake_model.will_answer('{"word": "bad", "n": 1}')

    def check(out: Out) -> None:
        if out.word == "bad":
            raise ModelOutputError("bad word")

    got = run(fake_model.backend(), system="s", user="u", model=Out, template=_template,
              check=check)  # fmt: skip
    assert got.fell_back and got.errors == ("AssistModelOutput: bad word",) * 2


def test_an_unreachable_server_falls_back_at_once(fake_model: FakeModel) -> None:
    fake_model.will_answer("HTTP 500")
    got = run(fake_model.backend(), system="s", user="u", model=Out, template=_template)
    assert got.fell_back and got.attempts == 1 and "HTTP 500" in got.errors[0]
