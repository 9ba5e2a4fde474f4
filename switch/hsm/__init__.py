"""Software HSM: the only place in cardswitch where clear keys and clear PINs exist.

The switch talks to it through `switch.hsm.client` (in-process or over TCP host commands), so a
deployment could point at a real payShield instead. Modules, one job each:

- keys: key objects, parity, check values, the block ciphers (on `cryptography`)
- pinblock, pinverify, cvv, mac: the payment primitives, pure functions
- lmk, keystore: the local master key and the named working keys encrypted under it
- keywrap: working keys under a zone master key (ZMK), for exchange between zones
- codec, framing, commands: the sans-IO host-command layout, length framing and dispatcher
- server, client: the Trio TCP server and the switch-facing client
- validation: PIN validation data, and card values by key name (PVVs, offsets, CVVs, encrypted PIN
  blocks) for issuers and terminals

`cardswitch hsm serve|calc|genkey` is switch.cli.hsm.
"""

from switch.hsm.validation import demo_values, encrypt_pin_block

__all__ = ["demo_values", "encrypt_pin_block"]
