"""Reading and converting captures for QA: JSON lines and pcap/pcapng (with TCP reassembly) in,
JSON lines or pcapng out, optionally sanitized. Recording them is the switch's own
(switch.capture: `--capture` on serve, demo and terminal)."""
