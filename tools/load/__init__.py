"""Load generation and benchmarking: the instruments that tell whether the switch is fast.

`histogram` records latencies with HdrHistogram-like precision, `mix` builds the transaction
mix from issuer card files, `runner` drives terminals against a switch (open or closed loop),
`report` and `plot` present the result, `codec` times the wire codec alone, and `processes` +
`bench` run the demo network as separate processes and measure it end to end.
"""
