"""Plaza's relay: one verified, combined firehose of every hosting provider.

``create_app(RelaySettings(...))`` builds the ASGI app (see :mod:`.app`); the parts are
the host subscribers (:mod:`.subscriber`, :mod:`.hosts`), the judging of each event
(:mod:`.relay`, :mod:`.verify`, :mod:`.frames`, :mod:`.identity`, :mod:`.resync`), the
relay's own stream (:mod:`.outbox`, :mod:`.firehose`), its store (:mod:`.store`) and
its XRPC methods (:mod:`.xrpc`).
"""

from plaza.services.relay.app import RelayComponents, create_app, open_components, run_components
from plaza.services.relay.settings import DEFAULT_PORT, RelaySettings, host_url, hostname_of
from plaza.services.relay.store import RelayStore

__all__ = [
    "DEFAULT_PORT",
    "RelayComponents",
    "RelaySettings",
    "RelayStore",
    "create_app",
    "host_url",
    "hostname_of",
    "open_components",
    "run_components",
]
