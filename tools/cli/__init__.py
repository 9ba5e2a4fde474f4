"""The tools' `cardswitch` commands (replay, capture, routes, load, bench), one module each,
following the convention in `switch.cli` and contributed through the `cardswitch.commands`
entry points."""
