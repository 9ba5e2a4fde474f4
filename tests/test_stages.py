"""tools.load.stages: each sample of a py-spy profile lands in the stage of the path it belongs
to, whatever library or trio frames sit under the switch's own."""

from __future__ import annotations

from tools.load.stages import main, shares

ROOT = "run (trio/_core/_run.py:2532);TerminalConnection._process (switch/acquirer.py:330)"


def test_samples_go_to_the_innermost_stage_of_the_switch_or_trio():
    lines = [
        # the codec, under the connection: decode, though the acquirer's frame is further out
        f"{ROOT};Dialect.decode (switch/wire/dialect.py:80);CompiledSpec.decode (switch/wire/fastcodec.py:86) 5",
        # sqlite3 and json are charged to their caller
        f"{ROOT};Journal._apply (switch/journal.py:502);apply_item (switch/journal.py:438) 7",
        f"{ROOT};_log_txn (switch/service.py:724);event (switch/logs.py:48);dumps (json/__init__.py:231) 3",
        f"{ROOT};Switch._exchange (switch/service.py:608);Runner.reschedule (trio/_core/_run.py:1800) 2",
        f"{ROOT};Judges.assess (switch/core/risk/engine.py:300) 1",
        f"{ROOT};forward_to_issuer (switch/core/participants/forwarding.py:51) 1",
        f"{ROOT};Vault.seal (switch/vault.py:60);mask_pan_like (switch/wire/masking.py:49) 1",
        # waiting, not working: dropped
        "_write_forever (switch/journal.py:390);Condition.wait (threading.py:331) 50",
        "unrolled_run (trio/_core/_run.py:2866);EpollIOManager.get_events (trio/_core/_io_epoll.py:243) 40",
    ]
    assert shares(lines) == {"decode (framing, dialect)": 5, "journal": 8, "log lines": 3,
                             "trio: scheduler, tasks, checkpoints": 2, "participant risk": 1,
                             "participant forwarding": 1}


def test_a_profile_without_working_samples_is_one_line_and_exit_2(tmp_path, capsys):
    profile = tmp_path / "idle.txt"
    profile.write_text("_write_forever (switch/journal.py:390);Condition.wait (threading.py:331) 50\n")
    assert main([str(profile)]) == 2
    assert main([str(tmp_path / "missing.txt")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "no samples" in errors[0] and "cannot read" in errors[1]
