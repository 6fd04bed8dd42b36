"""The REST half of the Sayna API (see ``client.py``): ``RestClient`` and its parts."""

from .base import auth_headers
from .client import RestClient

__all__ = ["RestClient", "auth_headers"]
