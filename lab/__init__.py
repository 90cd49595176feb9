"""Azure VPN gateway high-availability lab."""

__version__ = "0.1.0"
