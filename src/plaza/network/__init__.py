"""The network as one system: the pieces that join the services, the control plane and
the agents into a network that runs itself (the entryway, :mod:`plaza.network.entryway`).

It sits above the services and the agents: it may use both, and only the command line
uses it.
"""
