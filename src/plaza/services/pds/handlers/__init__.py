"""XRPC handlers, one module per namespace; each exports ``METHODS``."""
