"""The routing table itself: lookup agrees with a brute-force reading of the rules, conditions,
fallback, parsing errors, and load_routing_file (what the switch reloads with)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.errors import ConfigError
from switch.routes import load_routing_file
from switch.routing import Conditions, RouteContext, RouteEntry, RoutingTable, parse_routes


def reference(entries: list[RouteEntry], pan: str, context: RouteContext | None) -> RouteEntry | None:
    """The rules read literally: of the entries whose range holds the PAN's leading digits, whose
    length the PAN reaches and whose conditions hold, the narrowest range, then most kinds of
    condition, then highest priority, then first in the file."""
    padded = pan.ljust(19, "0")

    def holds(entry: RouteEntry) -> bool:
        c = entry.conditions
        if c is None:
            return True
        if context is None:
            return False
        return ((c.processing_codes is None or context.processing_code in c.processing_codes)
                and (c.mti_classes is None or context.mti_class in c.mti_classes)
                and (c.currencies is None or context.currency in c.currencies))

    matching = [
        (index, entry) for index, entry in enumerate(entries)
        if len(entry.low) <= len(pan) and int(entry.low) <= int(padded[: len(entry.low)]) <= int(entry.high) and holds(entry)
    ]
    if not matching:
        return None

    def key(item: tuple[int, RouteEntry]) -> tuple[int, int, int, int]:
        index, entry = item
        width = (int(entry.high) - int(entry.low) + 1) * 10 ** (19 - len(entry.low))
        kinds = 0 if entry.conditions is None else sum(v is not None for v in entry.conditions.as_tuple())
        return (width, -kinds, -entry.priority, index)

    return min(matching, key=key)[1]


def _maybe_set(values: list[str]) -> st.SearchStrategy:
    return st.none() | st.sets(st.sampled_from(values), min_size=1).map(frozenset)


@st.composite
def entries_strategy(draw: st.DrawFn) -> RouteEntry:
    digits = draw(st.integers(1, 4))
    low = draw(st.integers(0, 10**digits - 1))
    high = min(10**digits - 1, low + draw(st.sampled_from([0, 0, 0, 1, 3, 20])))
    conditions = draw(st.none() | st.builds(
        Conditions, _maybe_set(["00", "01"]), _maybe_set(["01", "02"]), _maybe_set(["840", "978"])))
    if conditions is not None and conditions.count == 0:
        conditions = None
    return RouteEntry(
        issuer=draw(st.sampled_from(["a", "b", "c"])), low=str(low).zfill(digits), high=str(high).zfill(digits),
        priority=draw(st.integers(0, 2)), conditions=conditions,
    )


contexts = st.none() | st.builds(
    RouteContext, mti=st.sampled_from(["0100", "0200", "0400"]),
    processing_code=st.sampled_from(["000000", "010000", "200000"]), currency=st.sampled_from(["840", "978", "036"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(entries_strategy(), max_size=25), st.lists(st.text("0123456789", min_size=1, max_size=19), min_size=1, max_size=20), contexts)
def test_lookup_agrees_with_brute_force(entries, pans, context):
    table = RoutingTable(entries)
    for pan in pans:
        assert table.lookup(pan, context) is reference(entries, pan, context)


def test_ten_thousand_entries_agree_with_brute_force():
    rng = random.Random(7)
    entries = []
    for index in range(10_000):
        digits = rng.randint(4, 8)
        low = rng.randrange(10**digits)
        high = min(10**digits - 1, low + rng.choice([0, 0, 0, 5, 500]))
        entries.append(RouteEntry(f"i{rng.randrange(9)}", str(low).zfill(digits), str(high).zfill(digits),
                                  rng.randrange(2), f"routes[{index}]"))
    table = RoutingTable(entries)
    for _ in range(200):
        pan = str(rng.randrange(10**16)).zfill(16)
        assert table.lookup(pan) is reference(entries, pan, None)


def test_non_digit_pans_do_not_route():
    table = RoutingTable([RouteEntry("a", "4", "4")])
    assert table.lookup("4111x") is None
    assert table.lookup("") is None
    assert table.lookup("\u0664111") is None  # an Arabic-Indic 4 is a digit to str.isdigit


def test_context_none_skips_conditional_entries():
    table = parse_routes("t", [
        {"prefix": "4", "issuer": "net"},
        {"prefix": "4", "issuer": "euro", "currencies": ["978"]},
    ])
    assert table.lookup("4111111111111111").issuer == "net"
    assert table.lookup("4111111111111111", RouteContext(currency="978")).issuer == "euro"
    assert table.lookup("4111111111111111", RouteContext(currency="840")).issuer == "net"


def test_route_context_keeps_transaction_type_and_mti_class():
    context = RouteContext(mti="0200", processing_code="011000", currency="840")
    assert (context.processing_code, context.mti_class) == ("01", "02")


def test_fallback_is_exposed():
    table = parse_routes("t", [{"prefix": "476173", "issuer": "bank-a", "fallback": "net"}], issuers=["bank-a", "net"])
    assert table.lookup("4761731234567890").fallback == "net"


@pytest.mark.parametrize("raw, key, expected", [
    ({"prefix": "47a", "issuer": "a"}, "routes[0].prefix", "digits"),
    ({"low": "500", "high": "400", "issuer": "a"}, "routes[0].high", "not below low"),
    ({"low": "40", "high": "400", "issuer": "a"}, "routes[0].high", "as many digits"),
    ({"prefix": "4", "issuer": "zz"}, "routes[0].issuer", "defined issuers"),
    ({"prefix": "4", "issuer": "a", "fallback": "zz"}, "routes[0].fallback", "defined issuers"),
    ({"prefix": "4", "issuer": "a", "currencies": "840"}, "routes[0].currencies", "3-digit"),
    ({"prefix": "4", "issuer": "a", "colour": "red"}, "routes[0].colour", "one of"),
    ({"prefix": "4", "issuer": "a", "priority": "high"}, "routes[0].priority", "integer"),
])
def test_parse_errors_name_key_and_expectation(raw, key, expected):
    with pytest.raises(ConfigError) as caught:
        parse_routes("routes.toml", [raw], issuers=["a"], lines=[12])
    assert caught.value.key == key and expected in caught.value.expected
    assert caught.value.file == "routes.toml:12"


def test_load_routing_file_accepts_demo_and_rejects_conflicts(tmp_path: Path):
    demo = Path(__file__).parent.parent / "specs" / "demo" / "routes-demo.toml"
    assert load_routing_file(demo).lookup("4761739001010010").issuer == "bank-a"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[issuers]]\nname = "a"\n[[issuers]]\nname = "b"\n\n'
                   '[[routes]]\nprefix = "4"\nissuer = "a"\n\n[[routes]]\nprefix = "4"\nissuer = "b"\n')
    with pytest.raises(ConfigError) as caught:
        load_routing_file(bad)
    assert caught.value.file == f"{bad}:10" and "conflict" in caught.value.expected


def test_load_routing_file_follows_routes_file_of_a_switch_config(tmp_path: Path):
    (tmp_path / "bins.csv").write_text("bin_low,bin_high,issuer,brand\n476173,476173,bank-a,VISA\n")
    config = tmp_path / "switch.toml"
    config.write_text('routes_file = "bins.csv"\n[[issuers]]\nname = "bank-a"\nhost = "127.0.0.1"\n'
                      'port = 9000\ndialect = "iso87-binary"\ntimeout_ms = 5000\n')
    assert load_routing_file(config).lookup("4761731234567890").issuer == "bank-a"


def test_load_routing_file_rejects_undefined_issuer_via_config(tmp_path: Path):
    (tmp_path / "bins.csv").write_text("bin_low,bin_high,issuer\n476173,476173,bank-z\n")
    config = tmp_path / "switch.toml"
    config.write_text('routes_file = "bins.csv"\n[[issuers]]\nname = "bank-a"\n')
    with pytest.raises(ConfigError) as caught:
        load_routing_file(config)
    assert caught.value.file.endswith("bins.csv:2") and "bank-z" in caught.value.expected
