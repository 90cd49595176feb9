"""Adapters: the only modules that import an outside system's library."""
