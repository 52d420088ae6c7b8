"""Record validation against the Lexicons Plaza knows (compiled once per process).

The registry is the bundled ``com.atproto.*``/``app.bsky.*`` set plus Plaza's own
``social.plaza.*`` documents from ``src/plaza/lexicons/``. ``validate`` follows the
repo methods' contract: ``true`` requires a known Lexicon and a valid record, ``false``
skips validation, and unset validates when the Lexicon is known and otherwise accepts
the record with ``validationStatus: "unknown"``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from plaza.atproto.lexicon import LexiconRegistry, default_registry
from plaza.services.pds.errors import InvalidRequestError


def plaza_lexicons() -> list[Any]:
    """Plaza's own Lexicon documents (``social.plaza.*``), parsed JSON."""
    folder = resources.files("plaza").joinpath("lexicons")
    return [
        json.loads(entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


@functools.cache
def plaza_registry() -> LexiconRegistry:
    """The bundled atproto Lexicons plus Plaza's, shared and frozen."""
    return default_registry().extended(plaza_lexicons()).freeze()


class LexiconCheck:
    def __init__(self, registry: LexiconRegistry | None = None) -> None:
        self.registry = registry or plaza_registry()
        self._known: dict[str, bool] = {}

    def is_record_type(self, collection: str) -> bool:
        known = self._known.get(collection)
        if known is None:
            known = False
            if collection in self.registry:
                main = self.registry.get(collection).main
                known = main is not None and main.get("type") == "record"
            self._known[collection] = known
        return known

    def check_record(
        self, collection: str, rkey: str, value: Any, validate: bool | None
    ) -> str | None:
        """``"valid"``, ``"unknown"`` or ``None`` (not validated); raises when invalid."""
        if validate is False:
            return None
        if not self.is_record_type(collection):
            if validate:
                raise InvalidRequestError(f"Lexicon not found: lex:{collection}")
            return "unknown"
        self.registry.validate_record(collection, value, rkey=rkey)
        return "valid"
