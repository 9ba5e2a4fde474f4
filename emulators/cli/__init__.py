"""The emulators' `cardswitch` commands (demo, issuer, terminal), one module each, following the
convention in `switch.cli` and contributed through the `cardswitch.commands` entry points."""
