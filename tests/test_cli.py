"""Every option of every flow.py command says what it does (`python flow.py COMMAND --help`)."""
import argparse
import importlib

import pytest

import flow

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("stage", list(flow.STAGES))
def test_every_option_has_help(stage):
    module = importlib.import_module(flow.STAGES[stage][0])
    parser = argparse.ArgumentParser(prog=f"flow.py {stage}")
    module.add_arguments(parser)
    silent = [a.option_strings[0] for a in parser._actions if a.dest != "help" and not a.help]
    assert not silent, f"flow.py {stage}: options without help text: {', '.join(silent)}"
