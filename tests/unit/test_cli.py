"""Every command `samverkan --help` lists runs: its module has a ``main`` and answers ``--help``.

`samverkan lagesbild` was listed in the README and the CLI's help but its module had no ``main``
(an AttributeError traceback); this checks the whole table, so no other entry can rot that way.
"""

from __future__ import annotations

import importlib

import pytest

from samverkan import cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_listed_command_has_a_main_that_answers_help(name, capsys):
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert callable(getattr(module, "main", None)), f"samverkan {name}: {module.__name__} has no main"
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
