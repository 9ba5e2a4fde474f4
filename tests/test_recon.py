"""Reconciliation against issuers: an issuer's ledger against the journal, transaction by
transaction, and what is reported when one side lost or changed something."""

from __future__ import annotations

import json

import pytest
import trio

from conftest import make_bank, refund_and_partial_reversal, start_issuer, until, write_config
from emulators.terminal import open_terminal
from processes import cardswitch
from switch.config import load_config
from switch.recon import reconcile
from switch.service import Switch
from tools.load.processes import free_port

pytestmark = pytest.mark.both_stores

APPROVE, EXPIRY = "4761730000000011", "3012"


async def test_a_lost_transaction_an_unknown_one_and_a_changed_amount_are_reported(demo, tmp_path, journal_url):
    bank = demo.issuers["bank_a"][1]
    bank.keep_ledger()
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        for amount in (1000, 2000, 3000):
            assert (await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"] == "00"
        await refund_and_partial_reversal(terminal, APPROVE, EXPIRY, refund=500, bought=4000, kept=1000)
    await demo.switch.journal.flush()
    day = demo.switch.business.date.isoformat()
    ledger = list(bank.ledger or ())
    clean = await demo.switch.journal.commit(lambda connection: reconcile(connection, "bank_a", day, ledger))
    assert clean.clean and clean.matched == 5

    lost = [entry for entry in ledger if (entry["kind"], entry["amount"]) != ("debit", 2000)]  # lost: the 20.00
    changed = [dict(entry, amount=3100) if (entry["kind"], entry["amount"]) == ("debit", 3000) else entry
               for entry in lost]
    unknown = dict(changed[0], key=["0200", "999999", changed[0]["key"][2]], amount=777)
    path = tmp_path / "bank_a.ledger"
    path.write_text("".join(json.dumps(entry) + "\n" for entry in [*changed, unknown]))
    where = ["--journal", journal_url] if journal_url else ["--data-dir", str(tmp_path / "data")]
    done = await trio.to_thread.run_sync(lambda: cardswitch(
        "recon", *where, "--ledger", str(path), "--issuer", "bank_a", "--date", day, "--json"))
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert [item["amount"] for item in result["missing_at_issuer"]] == [2000]
    assert [item["amount"] for item in result["missing_at_switch"]] == [777]
    assert [(item["switch"], item["issuer"]) for item in result["amount_differences"]] == [(3000, 3100)]
    assert result["matched"] == 3 and result["clean"] is False
    assert "4761730000000011" not in done.stdout  # cards masked
    table = await trio.to_thread.run_sync(lambda: cardswitch(
        "recon", *where, "--ledger", str(path), "--issuer", "bank_a", "--date", day))
    assert "NOT CLEAN" in table.stdout and "missing at the issuer" in table.stdout


async def test_stand_in_approvals_advised_later_reconcile(nursery, tmp_path, journal_url):
    """The issuer is down: the switch stands in; once it is back the advice books the debit, and
    the ledger and the journal agree on it."""
    port = free_port()
    config = write_config(tmp_path / "switch.toml", issuers=[{
        "name": "bank", "port": port, "reconnect_min_ms": 20, "reconnect_max_ms": 50,
        "stand_in": {"max_amount": 5000, "daily_count": 5, "daily_amount": 10000}}],
        routes=[{"prefix": "4", "issuer": "bank"}])
    config.write_text("[switch.saf]\nbackoff_min_ms = 20\nbackoff_max_ms = 50\n" + config.read_text())
    loaded = load_config(config, data_dir=tmp_path / "data")
    if journal_url:
        import attrs
        loaded = attrs.evolve(loaded, journal=journal_url)
    switch = Switch(loaded)
    switch_port = (await nursery.start(switch.run))["terminals"]
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        stood_in = await terminal.purchase(pan=APPROVE, amount=3000, expiry=EXPIRY)
    assert stood_in["39"] == "00" and stood_in["38"].startswith("S")
    bank = make_bank({"pan": APPROVE})
    bank.keep_ledger()
    await start_issuer(nursery, bank, port)
    await until(lambda: not switch.saf.pending("bank"))
    await switch.journal.flush()
    day = switch.business.date.isoformat()
    ledger = list(bank.ledger or ())
    result = await switch.journal.commit(lambda connection: reconcile(connection, "bank", day, ledger))
    assert result.clean and result.matched == 1


def test_a_ledger_line_that_is_no_entry_is_one_line_naming_it(tmp_path):
    path = tmp_path / "bank.ledger"
    path.write_text('{"kind": "debit", "amount": 5, "key": ["0200", "000001", "1201101010"]}\nnot json\n')
    done = cardswitch("recon", "--data-dir", str(tmp_path), "--ledger", str(path), "--issuer", "bank",
                      "--date", "2026-12-01")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and f"{path}:2: not a ledger entry" in done.stderr
