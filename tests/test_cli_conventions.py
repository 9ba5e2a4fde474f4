"""The conventions of switch/cli/__init__.py, checked over every command's parser."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from switch.cli import HelpFormatter, build_parser, main


def walk(parser: argparse.ArgumentParser, path: str = "cardswitch"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")


PARSERS = list(walk(build_parser()))


def test_every_command_is_walked():
    names = {path for path, _ in PARSERS}
    for expected in ("cardswitch serve", "cardswitch terminal", "cardswitch load", "cardswitch replay",
                     "cardswitch hsm serve", "cardswitch hsm calc kcv", "cardswitch routes import",
                     "cardswitch issuer", "cardswitch admin", "cardswitch bench", "cardswitch demo"):
        assert expected in names


@pytest.mark.parametrize("path, parser", PARSERS, ids=[path for path, _ in PARSERS])
def test_every_option_has_help_and_the_one_formatter(path, parser):
    assert parser.formatter_class is HelpFormatter, path
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and action.help.strip(), f"{path} {'/'.join(action.option_strings)}: no help"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["load", "--help"])
    assert exit.value.code == 0
    assert "(default: 8583)" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"cardswitch {version('cardswitch')}"


def test_host_port_options_accept_one_value_and_refuse_both_forms(capsys):
    assert main(["terminal", "echo", "--target", "nowhere"]) == 2
    assert "--target: expected HOST:PORT, got 'nowhere'" in capsys.readouterr().err
    assert main(["terminal", "echo", "--target", "127.0.0.1:8583", "--port", "8583"]) == 2
    assert main(["hsm", "serve", "--listen", "127.0.0.1:70000"]) == 2
    assert main(["hsm", "serve"]) == 2
    assert "--listen HOST:PORT (or --port) is required" in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ("terminal", "echo", "--target"),
    ("terminal", "echo", "--timeout", "2", "--port"),
    ("load", "--count", "1", "--grace", "0", "--timeout", "2", "--quiet", "--target"),
])
def test_no_answer_exits_3(capsys, command):
    from tools.load.processes import free_port

    port = free_port()
    address = str(port) if command[-1] == "--port" else f"127.0.0.1:{port}"
    assert main([*command, address]) == 3


def test_admin_without_an_answer_exits_3(capsys, tmp_path):
    from tools.load.processes import free_port

    token = tmp_path / "admin.token"
    token.write_text("ab" * 32)
    assert main(["admin", "status", "--admin", f"127.0.0.1:{free_port()}", "--token-file", str(token)]) == 3
    assert "cannot reach the admin port" in capsys.readouterr().err
