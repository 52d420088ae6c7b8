"""The entryway: account creation and sign-in at one URL (``plaza serve entryway``).

Members sign up without choosing a host (the agents place them,
:mod:`plaza.network.entryway.signup`), and sign in with credentials that outlive any one
host: the entryway is the account authority and holds each host password in escrow
(:mod:`plaza.network.entryway.sessions`, :mod:`plaza.network.entryway.escrow`). See
docs/entryway.md.
"""

from plaza.network.entryway.app import create_app
from plaza.network.entryway.credentials import NSID as HOST_CREDENTIAL_NSID
from plaza.network.entryway.settings import DEFAULT_PORT, EntrywaySettings

__all__ = ["DEFAULT_PORT", "HOST_CREDENTIAL_NSID", "EntrywaySettings", "create_app"]
