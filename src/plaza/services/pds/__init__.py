"""Plaza's hosting service: an AT Protocol PDS (``create_app(settings)``)."""

from plaza.services.pds.app import METHODS, create_app
from plaza.services.pds.settings import PdsSettings, service_did_for

__all__ = ["METHODS", "PdsSettings", "create_app", "service_did_for"]
