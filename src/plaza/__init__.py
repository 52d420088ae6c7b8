"""Plaza: a member-owned, agent-operated social network on the AT Protocol."""

from plaza.errors import PlazaError

__all__ = ["PlazaError"]
__version__ = "0.1.0"
