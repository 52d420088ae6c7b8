"""The provider services: each one is a thin ASGI app, ``create_app(settings)``, over a store.

Services read the clock, the network and the disk; the protocol rules they apply live in
:mod:`plaza.atproto` and are called with those inputs passed in.
"""
