"""MOBIP server: a self-hostable payment-request platform implementing the MOBIP API 2.0."""

__version__ = "0.1.0"
