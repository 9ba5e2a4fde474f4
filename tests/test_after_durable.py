"""What the journal runs once a batch is committed (`after_durable`): the terminal's answer
where money may have moved. Never before the writes queued ahead of it are committed, whoever
commits them (the loop's committer, or the writer thread while the database is locked), and one
callback that fails costs nothing to the others. An issuer link's request waits on it (a gate)
for its reversal's commit: one whose task is cancelled before then is never sent."""

from __future__ import annotations

import sqlite3

import trio

from conftest import journal_rows, read_events, until
from emulators.terminal import open_terminal
from switch.journal import DB_FILE, Journal

INSERT = "INSERT INTO request_keys (tid, stan, transmitted, trace, claimed_at) VALUES (?, '000001', '1201120000', ?, 0)"


def committed_traces(data_dir) -> list[int]:
    return [row["trace"] for row in journal_rows(data_dir, "SELECT trace FROM request_keys ORDER BY trace")]


async def test_a_callback_runs_once_the_writes_queued_before_it_are_committed_and_in_order(tmp_path, log_file):
    journal = Journal(tmp_path)
    seen: list[tuple[str, list[int]]] = []

    def note(name: str) -> None:
        seen.append((name, committed_traces(tmp_path)))  # what another connection can read by then

    def broken() -> None:
        raise RuntimeError("a bug in one answer")

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.execute(INSERT, ("TERM0001", 1))
        journal.after_durable(lambda: note("first"))
        journal.after_durable(broken)
        journal.execute(INSERT, ("TERM0002", 2))
        journal.after_durable(lambda: note("second"))
        assert seen == [], "nothing runs in the step that queued it"
        await until(lambda: len(seen) == 2)
        nursery.cancel_scope.cancel()
    (first, first_saw), (second, second_saw) = seen
    assert (first, second) == ("first", "second")
    assert 1 in first_saw and second_saw == [1, 2]
    failures = [e for e in read_events(log_file) if e["event"] == "internal_error"]
    assert [(e["where"], e["error"]) for e in failures] == [("after_durable", "RuntimeError")]


async def test_a_callback_waits_while_the_database_is_locked_and_runs_after_the_retried_commit(tmp_path, log_file):
    journal = Journal(tmp_path)
    ran: list[list[int]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with sqlite3.connect(tmp_path / DB_FILE) as locker:
            locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            journal.execute(INSERT, ("TERM0001", 7))
            journal.after_durable(lambda: ran.append(committed_traces(tmp_path)))
            await until(lambda: "journal_stalled" in [e["event"] for e in read_events(log_file)])
            await trio.sleep(0.2)
            assert ran == [] and journal.stalled
            locker.rollback()
        await until(lambda: ran)
        nursery.cancel_scope.cancel()
    assert ran == [[7]]


async def test_a_request_cancelled_while_its_gate_is_shut_is_never_sent_and_one_let_through_is_answered(demo):
    link = demo.switch.links["bank_a"]
    bank = demo.issuers["bank_a"][1]
    pan = "4761730000000011"
    balance = bank.accounts[pan].balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        request = terminal.card_request("0200", pan=pan, amount=100, expiry="3012")
    gates: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.exchange, link.outgoing(request), gates.append)
        await until(lambda: gates)
        nursery.cancel_scope.cancel()  # a stop's grace ran out before the commit
    gates.pop()()  # the commit comes after all
    await trio.sleep(0.3)
    assert bank.accounts[pan].balance == balance and link.in_flight == 0

    answers = []

    async def exchange() -> None:
        answers.append(await link.exchange(link.outgoing(request), gates.append))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(exchange)
        await until(lambda: gates)
        await trio.sleep(0.1)
        assert bank.accounts[pan].balance == balance, "nothing goes before the gate opens"
        gates.pop()()
    assert answers[0]["39"] == "00" and bank.accounts[pan].balance == balance - 100
