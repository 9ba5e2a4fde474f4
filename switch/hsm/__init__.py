"""Software HSM: the only place in cardswitch where clear keys and clear PINs exist.

The switch talks to it through `switch.hsm.client` (in-process or over TCP host commands), so a
deployment could point at a real payShield instead. Modules, one job each:

- keys: key objects, parity, check values, the block ciphers (on `cryptography`)
- pinblock, pinverify, cvv, mac: the payment primitives, pure functions
- lmk, keystore: the local master key and the named working keys encrypted under it
- transport: working keys under a zone master key (ZMK), for exchange between zones
- codec, framing, commands: the sans-IO host-command layout, length framing and dispatcher
- server, client: the Trio TCP server and the switch-facing client
- demo: values the demo network needs (PVVs, offsets, CVVs, encrypted PIN blocks)
- cli: `cardswitch hsm serve` and `cardswitch hsm calc`
"""

from switch.hsm.demo import demo_values, encrypt_pin_block

__all__ = ["demo_values", "encrypt_pin_block"]
