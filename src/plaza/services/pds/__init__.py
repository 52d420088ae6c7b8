"""Plaza's hosting service: an AT Protocol PDS (``create_app(settings)``)."""

from plaza.services.pds.app import METHODS, create_app
from plaza.services.pds.components import PdsComponents, open_components
from plaza.services.pds.settings import PdsSettings, service_did_for

__all__ = [
    "METHODS",
    "PdsComponents",
    "PdsSettings",
    "create_app",
    "open_components",
    "service_did_for",
]
