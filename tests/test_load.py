"""The load generator over real loopback sockets: it runs, reports every figure, and counts
a request that is never answered as lost — never as answered, never twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio

from emulators.issuer import load_issuer_file, serve_issuer
from tools.load import report
from tools.load.histogram import Histogram, bucket_index, bucket_range
from tools.load.mix import Mix, cards_by_kind, parse_weights
from tools.load.runner import LoadRun, LoadSettings

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"target", "mode", "offered_tps", "connections", "elapsed_s", "requests", "answered", "tps",
                "latency_ms", "response_codes", "by_kind", "errors", "lost", "late", "notes"}
LATENCY_KEYS = {"p50", "p90", "p99", "p99.9", "max", "mean"}


def test_histogram_buckets_hold_their_values_within_one_percent():
    for value in (0, 1, 255, 256, 257, 1000, 12345, 999_999, 10**8):
        low, high = bucket_range(bucket_index(value))
        assert low <= value <= high and (high - low) <= max(1, value // 100)


def test_histogram_percentiles():
    histogram = Histogram()
    for value in range(1, 1001):
        histogram.record(value)
    assert histogram.percentile(50) in range(500, 505)
    assert histogram.percentile(99) in range(990, 1000)
    assert histogram.percentile(100) == histogram.max == 1000
    assert Histogram().percentile(99) == 0


async def test_closed_loop_against_the_demo_network(demo):
    mix = Mix(parse_weights("purchase=3,decline=1,reversal=1"), cards_by_kind())
    settings = LoadSettings("127.0.0.1", demo.ports["terminals"], connections=3, in_flight=2,
                            duration=None, count=60)
    results = await LoadRun(settings, mix).run()
    figures = report.summary(results)
    assert set(figures) == SUMMARY_KEYS and set(figures["latency_ms"]) == LATENCY_KEYS
    assert figures["lost"] == 0 and figures["errors"] == {}
    assert figures["requests"] == figures["answered"] >= 60
    assert set(figures["by_kind"]["decline"]["response_codes"]) == {"51"}
    assert figures["by_kind"]["reversal"]["response_codes"] == {"00": figures["by_kind"]["reversal"]["requests"]}
    assert "TPS" in report.text(figures)


async def test_open_loop_counts_unanswered_requests_as_lost(nursery, tmp_path):
    """Straight at an issuer emulator, whose no-reply card is never answered: each of those
    requests is lost, every other one answered."""
    issuer_file = tmp_path / "issuer.toml"
    issuer_file.write_text(
        "[issuer]\nname = 'bank'\n\n"
        "[[cards]]\npan = '4761730000000011'\nexpiry = '3012'\nbalance = 100000\n\n"
        "[[cards]]\npan = '4761730000000029'\nexpiry = '3012'\nbalance = 100000\nfault = 'no_reply'\n")
    config, bank = load_issuer_file(issuer_file)
    port = await nursery.start(serve_issuer, config, bank)
    weights = parse_weights("purchase=1,timeout=1")
    cards = cards_by_kind([issuer_file])
    replay = Mix(weights, cards, seed=7)
    expected_lost = sum(replay.next().kind == "timeout" for _ in range(40))
    settings = LoadSettings("127.0.0.1", port, connections=2, tps=400, duration=None, count=40,
                            timeout=30, grace=0.5)
    results = await LoadRun(settings, Mix(weights, cards, seed=7)).run()
    assert 0 < expected_lost < 40
    assert results.lost == expected_lost
    assert results.answered == 40 - expected_lost == results.codes["00"]
    assert results.sent == 40 and results.outstanding == 0


async def test_cli_writes_json_and_plot(demo, tmp_path):
    out, page = tmp_path / "load.json", tmp_path / "load.html"
    done = await trio.run_process(
        [sys.executable, "-m", "switch.cli", "load", "--target", f"127.0.0.1:{demo.ports['terminals']}",
         "--count", "30", "--tps", "200", "--json", str(out), "--plot", str(page)],
        cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert set(figures) == SUMMARY_KEYS and figures["mode"] == "open" and figures["lost"] == 0
    assert "<svg" in page.read_text()
    assert b"p99.9" in done.stdout


def test_cli_bad_target_is_one_line_exit_2():
    done = subprocess.run([sys.executable, "-m", "switch.cli", "load", "--target", "nowhere"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--target" in done.stderr and "Traceback" not in done.stderr


async def test_back_to_back_runs_on_the_same_terminals_are_not_duplicates(demo):
    """Every run uses the same terminal IDs: restarting field 11 at 000001 in each got 94s (or
    an earlier run's answers) from the switch's duplicate window; a random first STAN per
    terminal does not, and a 94 makes the run fail."""
    def run(first_stan):
        settings = LoadSettings("127.0.0.1", demo.ports["terminals"], connections=2, in_flight=2,
                                duration=None, count=40, first_stan=first_stan)
        return LoadRun(settings, Mix(parse_weights("purchase=1"), cards_by_kind())).run()

    # A retransmission is the same terminal, STAN and transmission time (field 7, in seconds):
    # two runs restarting at STAN 1 collide only where they share a second, which a busy host
    # can deny a pair of them. A few tries, stopping at the first collision.
    restarted = []
    for _ in range(6):
        restarted.append(report.summary(await run(1)))
        if report.problems(restarted[-1]):
            break
    assert any(report.problems(figures) for figures in restarted), restarted
    for _ in range(2):
        figures = report.summary(await run(None))
        assert figures["response_codes"] == {"00": figures["requests"]} and report.problems(figures) == []


def test_a_94_or_more_answers_than_requests_is_a_failure():
    clean = {"lost": 0, "errors": {}, "late": 0, "response_codes": {"00": 10}}
    assert report.problems(clean) == []
    assert "94" in report.problems({**clean, "response_codes": {"00": 8, "94": 2}})[0]
    assert "duplicate answers" in report.problems({**clean, "late": 3})[0]
    assert report.problems({**clean, "lost": 2, "late": 2}) == ["2 requests lost"]
