"""Recording ISO 8583 traffic for QA replay (`--capture` on serve, demo and terminal): the
project's JSON-lines format, pcapng writing for Wireshark, and sanitizing for sharing. Reading
and converting captures is done by tools outside the switch (`cardswitch replay`, `cardswitch
capture convert`).

Captures hold real card data unless sanitized, so recording is opt-in and for test
environments only (see `open_capture`).
"""
