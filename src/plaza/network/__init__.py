"""The network as one system: the processes ``plaza up`` starts and the pieces that join
the services, the control plane and the agents into a network that runs itself.

:mod:`plaza.network.layout`, :mod:`~plaza.network.genesis` and
:mod:`~plaza.network.processes` prepare a data directory (the DAO, the market and the
providers it contracts on first start) and describe the processes ``plaza up``
(:mod:`plaza.cli.up`) starts; :mod:`plaza.network.entryway` is the one URL members sign
up and sign in at; :mod:`plaza.network.provider` is a hosting provider's daemon (usage
reports, bids, contract signatures over the market's HTTP API);
:mod:`plaza.network.load` drives a running network with simulated members and prices
what it bought against the simulator's oracle; :mod:`plaza.network.chaos` is the
operator's fault injection. It sits above the services and the agents: it may use both,
and only the command line uses it. See docs/network.md.
"""

from __future__ import annotations
