"""What message MACs cost the switch per transaction, to hold against `codec_us_per_txn`.

For a terminal that must MAC, the switch checks the request's MAC (M8) and MACs its answer (one
more encode of the answer, then M6), through the HSM. This times exactly that, with the switch's
own code (switch.macs, the in-process HSM) on the benchmark's sample of requests and responses,
and no I/O. The bench's terminals do not MAC, so `switch_cpu_us_per_txn` leaves this out; a
terminal that MACs costs about this much more.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from switch.config import load_config
from switch.macs import Macs
from switch.security import open_hsm
from switch.wire.macs import received_mac
from tools.load.codec import Sample


def us_per_txn(prepared: list[Sample], switch_config: Path, min_seconds: float = 0.5) -> float:
    """Microseconds for checking a request's MAC and MACing its answer, per transaction, over at
    least `min_seconds`; under the TAK of the config's first terminal that must MAC."""
    config = load_config(switch_config)
    tak = next((t.tak for l in config.listeners for t in l.terminals.values() if t.mac and t.tak), None)
    if config.hsm is None or tak is None:
        raise RuntimeError(f"{switch_config}: no terminal that must MAC, or no [hsm]")
    macs = Macs(open_hsm(config.hsm, config.source), config.hsm)

    async def measure() -> float:
        signed = []
        for dialect, request, _, _, _, response in prepared:
            sealed = await macs.seal(dialect.decode(request), dialect, tak)
            assert sealed is not None
            found = received_mac(sealed[0], sealed[1], dialect)
            assert not isinstance(found, str)
            signed.append((dialect, found, response))
        done = 0
        started = time.perf_counter()
        while True:
            for dialect, found, response in signed:
                await macs.verify(tak, found.data, found.mac)
                await macs.answer(response, dialect, tak)
            done += len(signed)
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                return elapsed / done * 1_000_000

    return trio.run(measure)
