"""The network as one system: the processes ``plaza up`` starts and the daemons that
let it run without an operator.

:mod:`plaza.network.provider` is a hosting provider's daemon (usage reports, bids,
contract signatures over the market's HTTP API); :mod:`plaza.network.load` drives a
running network with simulated members and prices what it bought against the
simulator's oracle.
"""

from __future__ import annotations
