"""Several switch instances on one PostgreSQL journal, in one process each network (two `Switch`
services on their own listener ports, the demo's issuers behind both): the journal, not one
instance's memory, decides retransmissions, reversals and PIN tries. Instances that die are in
tests/test_shared_faults.py (real processes)."""

from __future__ import annotations



import attrs
import psycopg
import pytest
import trio

from conftest import write_config
from processes import cardswitch, demo_serving
from tools.load.processes import free_port, free_ports, wait_for_events

from emulators.issuer import load_issuer_file, serve_issuer
from emulators.network import DEMO_LMK, start_network, terminal_pin_key
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.hsm.lmk import load_lmk
from switch.hsm.server import serve_hsm
from switch.journal import MIGRATIONS, Journal
from switch.pgjournal import PostgresJournal
from switch.service import Switch
from test_security import BANK_A, CARD, switch_config

APPROVE = "4761730000000011"
EXPIRY = "3012"


async def another_instance(nursery: trio.Nursery, config) -> tuple[Switch, int]:
    """A second switch on the same config (same journal and data key, its own listener port)."""
    switch = Switch(config)
    ports = await nursery.start(switch.run)
    with trio.fail_after(10):
        await switch.wait_links_up()
    return switch, ports["terminals"]


@pytest.fixture
async def two(nursery, tmp_path, log_file, postgres_url):
    """The demo network on the shared journal, and a second instance: (network, its port, the
    second instance's port)."""
    network = await start_network(nursery, tmp_path / "data", journal=postgres_url)
    _, port = await another_instance(nursery, network.switch.config)
    return network, network.ports["terminals"], port


def balance(network) -> int:
    return network.issuers["bank_a"][1].accounts[APPROVE].balance


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


def test_both_stores_have_the_same_schema(tmp_path, postgres_url):
    journal = Journal(tmp_path)
    tables = [row[0] for row in journal.read("SELECT name FROM sqlite_master WHERE type = 'table'")]
    on_sqlite = {table: {row[1] for row in journal.read(f"PRAGMA table_info({table})")} for table in tables}
    journal.close()
    shared = PostgresJournal(postgres_url)
    on_postgres: dict[str, set[str]] = {}
    for table, column in shared.read("SELECT table_name, column_name FROM information_schema.columns"
                                     " WHERE table_schema = 'public' AND table_name != 'schema_version'"):
        on_postgres.setdefault(table, set()).add(column)
    assert shared.version == len(MIGRATIONS) == Journal(tmp_path / "again").version
    shared.close()
    PostgresJournal(postgres_url).close()  # a second instance migrates nothing again
    assert on_postgres == on_sqlite


async def test_a_retransmission_to_another_instance_gets_the_first_answer_and_debits_once(two):
    network, first, second = two
    before = balance(network)
    async with open_terminal("127.0.0.1", first) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        answer = await terminal.send(purchase)
    async with open_terminal("127.0.0.1", second) as reconnected:  # the terminal reconnected: the other instance
        again = await reconnected.send(purchase.copy())
        changed = purchase.copy()
        changed.fields["4"] = "000000009999"
        conflicting = await reconnected.send(changed)
    assert (answer["39"], again["39"], again["38"]) == ("00", "00", answer["38"])
    assert conflicting["39"] == "94"
    assert balance(network) == before - 1500


async def test_a_reversal_at_another_instance_reverses_once(two):
    network, first, second = two
    before = balance(network)
    async with open_terminal("127.0.0.1", first) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=2500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
    async with open_terminal("127.0.0.1", second, first_stan=500) as reconnected:
        assert (await reconnected.reverse(purchase))["39"] == "00"
    assert balance(network) == before
    async with open_terminal("127.0.0.1", first, first_stan=900) as terminal:  # its window still says approved
        assert (await terminal.reverse(purchase))["39"] == "00"
    assert balance(network) == before  # not credited twice
    await network.switch.journal.flush()
    reasons = [row[0] for row in network.switch.journal.read(
        "SELECT reason FROM transactions WHERE mti = '0400' ORDER BY created_at")]
    assert reasons == [None, "original already reversed by another instance: not forwarded"]


async def test_reversals_of_one_purchase_at_two_instances_at_once_credit_it_once(two):
    network, first, second = two
    before = balance(network)
    async with open_terminal("127.0.0.1", first) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=3500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
    codes = []
    async with open_terminal("127.0.0.1", first, first_stan=300) as one, \
            open_terminal("127.0.0.1", second, first_stan=600) as other:
        async def reverse(terminal) -> None:
            codes.append((await terminal.reverse(purchase))["39"])

        async with trio.open_nursery() as both:
            both.start_soon(reverse, one)
            both.start_soon(reverse, other)
    assert codes == ["00", "00"]
    with trio.fail_after(5):  # a reversal that went through SAF arrives a moment later
        while balance(network) != before:
            await trio.sleep(0.02)
    await trio.sleep(0.3)
    assert balance(network) == before  # once, not twice


async def test_wrong_pins_spread_over_instances_get_no_more_guesses_than_the_tries(nursery, tmp_path,
                                                                                   postgres_url, log_file):
    """The burst test of tests/test_security.py, over two instances: each HSM round trip is a
    real wait (the HSM over TCP), the window in which instances could each allow a guess."""
    hsm_port = await nursery.start(serve_hsm, 0, "127.0.0.1", load_lmk(DEMO_LMK))
    host_config, bank = load_issuer_file(BANK_A)
    issuer_port = await nursery.start(serve_issuer, attrs.evolve(host_config, port=0), bank)
    config = attrs.evolve(load_config(switch_config(tmp_path, issuer_port, mode="tcp", hsm_port=hsm_port),
                                      data_dir=tmp_path / "data"), journal=postgres_url)  # max_pin_tries = 2
    ports = [(await another_instance(nursery, config))[1] for _ in range(2)]
    pin_key = terminal_pin_key()
    codes = []

    async def guess(port: int, stan: int, pin: str) -> None:
        async with open_terminal("127.0.0.1", port, pin_key=pin_key, first_stan=stan) as terminal:
            codes.append((await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=pin))["39"])

    async with trio.open_nursery() as guesses:
        for n in range(8):
            guesses.start_soon(guess, ports[n % 2], 100 * (n + 1), f"{n:04d}")
    assert sorted(codes) == ["55"] + ["75"] * 7
    assert rows(postgres_url, "SELECT wrong FROM pin_tries") == [(2,)]


async def test_an_instance_with_another_data_key_is_refused(tmp_path, postgres_url, monkeypatch):
    network_config = attrs.evolve(load_config(switch_config(tmp_path, 9), data_dir=tmp_path / "one"),
                                  journal=postgres_url)
    Switch(network_config).journal.close()
    with pytest.raises(ConfigError, match="data key") as refused:
        Switch(attrs.evolve(network_config, data_dir=tmp_path / "two"))  # a data key of its own
    assert "every instance needs the same CARDSWITCH_DATA_KEY" in str(refused.value)


def test_serve_refuses_a_journal_it_cannot_use(tmp_path, postgres_url):
    config = switch_config(tmp_path, 9)
    not_a_url = cardswitch("serve", "--config", str(config), "--journal", "mysql://u:secret@db/x")
    assert not_a_url.returncode == 2 and "--journal: expected a postgresql:// URL" in not_a_url.stderr
    assert "secret" not in not_a_url.stderr
    unreachable = cardswitch("serve", "--config", str(config), "--journal",
                             "postgresql://cardswitch:secret@127.0.0.1:9/none")
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr
    assert "switch.journal: a reachable PostgreSQL database (postgresql://cardswitch:***@127.0.0.1:9/none" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


def test_workers_on_the_sqlite_journal_are_refused(tmp_path):
    config = switch_config(tmp_path, 9).read_text().replace("port = 0", "port = 18583", 1)
    (tmp_path / "fixed.toml").write_text(config)
    done = cardswitch("serve", "--config", str(tmp_path / "fixed.toml"), "--workers", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the SQLite journal is one process's" in done.stderr and "postgresql://" in done.stderr


async def test_journal_commands_read_the_shared_journal(two, postgres_url):
    network, first, second = two
    async with open_terminal("127.0.0.1", first) as terminal:
        await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY)
    async with open_terminal("127.0.0.1", second, first_stan=50) as terminal:
        await terminal.purchase(pan="4761730000000029", amount=5000, expiry=EXPIRY)  # 51
    await network.switch.journal.flush()
    listed = await trio.to_thread.run_sync(lambda: cardswitch("journal", "list", "--journal", postgres_url, "--json"))
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.count('"rc": "00"') for line in listed.stdout.splitlines()) == [0, 1]
    totals = await trio.to_thread.run_sync(lambda: cardswitch("journal", "totals", "--journal", postgres_url))
    assert totals.returncode == 0 and "bank_a" in totals.stdout, totals.stderr
    checked = await trio.to_thread.run_sync(lambda: cardswitch("journal", "check", "--journal", postgres_url))
    assert checked.returncode == 0 and "journal ok" in checked.stdout, checked.stdout + checked.stderr


async def test_stand_in_limits_count_the_approvals_of_every_instance(nursery, tmp_path, postgres_url):
    """bank is down; each card may be stood in for twice a day (80.00 at most): the two
    instances together approve twice, and a reversal at either gives the allowance back."""
    limits = {"max_amount": 5000, "daily_count": 2, "daily_amount": 8000}
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": free_port(), "stand_in": limits}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    loaded = attrs.evolve(load_config(config, data_dir=tmp_path / "data"), journal=postgres_url)
    first, second = [(await nursery.start(Switch(loaded).run))["terminals"] for _ in range(2)]
    async with open_terminal("127.0.0.1", first) as one, open_terminal("127.0.0.1", second, first_stan=500) as other:
        approved = await one.send(one.card_request("0200", pan=APPROVE, amount=3000, expiry=EXPIRY))
        assert approved["39"] == "00" and approved["38"].startswith("S")
        assert (await other.purchase(pan=APPROVE, amount=4000, expiry=EXPIRY))["39"] == "00"
        assert (await one.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "65"  # third of the day
        assert (await other.purchase(pan="4761730000000029", amount=100, expiry=EXPIRY))["39"] == "00"  # another card
        purchase = one.card_request("0200", pan=APPROVE, amount=3000, expiry=EXPIRY)
        purchase.fields.update({"11": approved["11"], "7": approved["7"], "37": approved["37"]})
        assert (await other.reverse(purchase))["39"] == "00"  # the first approval, reversed at the other
        assert (await other.purchase(pan=APPROVE, amount=2000, expiry=EXPIRY))["39"] == "00"
    assert rows(postgres_url, "SELECT count, amount FROM stand_in_usage WHERE pan_hash = ("
                              "SELECT pan_hash FROM transactions WHERE amount = 4000)") == [(2, 6000)]


async def test_risk_counts_reach_every_instance_within_a_second(two):
    """The demo's velocity rule: card ...0060 approved twice an hour, then 65. Approved once at
    each instance, the third request (at either) is declined once the counts have been shared."""
    network, first, second = two
    velocity_card = "4761730000000060"
    async with open_terminal("127.0.0.1", first) as one, open_terminal("127.0.0.1", second, first_stan=500) as other:
        assert (await one.purchase(pan=velocity_card, amount=100, expiry=EXPIRY))["39"] == "00"
        assert (await other.purchase(pan=velocity_card, amount=100, expiry=EXPIRY))["39"] == "00"
        await trio.sleep(2.5)  # RISK_SHARE_INTERVAL, twice, and the time for a look
        assert (await one.purchase(pan=velocity_card, amount=100, expiry=EXPIRY))["39"] == "65"
        assert (await other.purchase(pan=velocity_card, amount=100, expiry=EXPIRY))["39"] == "65"


def test_the_scripted_demo_runs_on_postgresql(postgres_url):
    from emulators.cli.demo import SCRIPT
    done = cardswitch("demo", "--journal", postgres_url, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(SCRIPT)} of {len(SCRIPT)} outcomes as expected" in done.stdout


def test_the_demo_serves_with_two_workers_on_one_journal(tmp_path, postgres_url):
    port = free_ports(2)  # the demo listens on PORT and PORT+1
    with demo_serving("--workers", "2", "--journal", postgres_url, "--port", str(port),
                      "--data-dir", str(tmp_path / "data")) as demo:
        wait_for_events(tmp_path / "data" / "switch.log", "listener_up", 4, demo.process)  # 2 listeners x 2 workers
        for amount in range(1, 9):  # one connection each: the kernel spreads them over the workers
            purchase = cardswitch("terminal", "purchase", "--target", f"127.0.0.1:{port}", "--pan", APPROVE,
                                  "--expiry", EXPIRY, "--amount", str(amount), "--json")
            assert '"39": "00"' in purchase.stdout, purchase.stdout + purchase.stderr
    assert demo.process.returncode == 0, demo.out + demo.err
    assert "2 workers" in demo.out
    assert rows(postgres_url, "SELECT count(*) FROM transactions WHERE rc = '00'") == [(8,)]


async def test_instances_send_their_issuers_stans_of_their_own(two, postgres_url):
    """Two instances on one issuer: never the same STAN (nor field 90) from both at once."""
    network, first, second = two
    for port, stan in ((first, 1), (second, 500)):
        async with open_terminal("127.0.0.1", port, first_stan=stan) as terminal:
            for _ in range(3):
                assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    await network.switch.journal.flush()
    sent = rows(postgres_url, "SELECT i.slot, t.sent_as FROM transactions t JOIN instances i ON i.id = t.instance"
                              " WHERE t.sent_as IS NOT NULL")
    assert len(sent) == 6 and {slot for slot, _ in sent} == {0, 1}
    for slot, sent_as in sent:
        assert slot * 100_000 < int(sent_as[4:10]) < (slot + 1) * 100_000
