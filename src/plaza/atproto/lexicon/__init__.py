"""Lexicon: schema documents, the bundled ``com.atproto.*``/``app.bsky.*`` set, and
validation of records, XRPC parameters, bodies and stream messages against them.
"""

from plaza.atproto.lexicon.compiler import count_graphemes
from plaza.atproto.lexicon.errors import InvalidDataError
from plaza.atproto.lexicon.registry import LexiconRegistry, default_registry
from plaza.atproto.lexicon.schema import LexiconDoc, parse_lexicon

__all__ = [
    "InvalidDataError",
    "LexiconDoc",
    "LexiconRegistry",
    "count_graphemes",
    "default_registry",
    "parse_lexicon",
]
