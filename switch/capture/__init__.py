"""Captures of ISO 8583 traffic for QA replay: the project's JSON-lines format, pcap/pcapng
reading with TCP reassembly, pcapng writing for Wireshark, and sanitizing for sharing.

Captures hold real card data unless sanitized, so recording is opt-in and for test
environments only (see `open_capture`).
"""
