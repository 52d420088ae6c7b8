"""The local network as one system: its data layout, its genesis (the DAO, the market and
the providers it contracts on first start) and the operator's chaos tools.

``plaza up`` (:mod:`plaza.cli.up`) uses this package to prepare a data directory before
it starts one OS process per service; see docs/network.md.
"""
