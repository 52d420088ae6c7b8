"""The app view's XRPC methods, one module per Lexicon group; each exports ``METHODS``."""
