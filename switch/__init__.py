"""cardswitch: an ISO 8583 card-network switch on Trio (README.md)."""

from switch import compiled

compiled.install()  # before any module with a compiled form is imported (switch/compiled.py)
