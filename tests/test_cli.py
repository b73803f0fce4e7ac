"""Every option of every flow.py command says what it does (`python flow.py COMMAND --help`), and the options the
stages share mean one thing everywhere: --build is the build folder every default path lies under."""
import argparse
import importlib
import os

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


BUILD_HELP = "build directory (default: the project's build/)"


def _parser(stage):
    parser = argparse.ArgumentParser(prog=f"flow.py {stage}")
    importlib.import_module(flow.STAGES[stage][0]).add_arguments(parser)
    return parser


@pytest.mark.parametrize("stage", list(flow.STAGES))
def test_every_stage_takes_build_and_shows_its_preset_default(stage):
    options = _parser(stage)._option_string_actions
    assert "--build" in options, f"flow.py {stage} has no --build"
    assert options["--build"].help == BUILD_HELP and options["--build"].default == "build", stage
    preset = options["--preset"]
    assert f"default: {preset.default}" in preset.help or f"(default {preset.default})" in preset.help, stage


@pytest.mark.parametrize("stage,extra", [("gen-rtl", []), ("sim", []), ("bitstream", []),
                                         ("run", ["--port", "/dev/null"])])
def test_build_moves_the_default_paths(stage, extra, tmp_path, capsys):
    """Without --model/--rtl, a stage reads build/<preset>/ under --build: its error names that folder."""
    assert flow.main([stage, "--preset", "nothing-here", "--build", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and os.path.join(str(tmp_path), "nothing-here") in err, err


def test_train_quant_shows_the_defaults_each_preset_gives():
    from quant import presets
    text = _parser("train-quant").format_help().replace("\n", " ")
    for name in presets.PRESETS:
        assert f"{name} {presets.resolve(name)[1]['epochs']}" in " ".join(text.split()), name


IMAGE_OPTIONS = [("sim", "--images"), ("report", "--images"), ("report", "--bench-images"), ("explore", "--images"),
                 ("run", "--images")]


@pytest.mark.parametrize("stage,option", IMAGE_OPTIONS)
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_image_counts_mean_one_thing_everywhere(stage, option, value, tmp_path, capsys):
    """Every image-count option takes N (the first N test images) or `all`, and refuses anything else with the same
    sentence before it reads or writes anything."""
    extra = ["--port", str(tmp_path / "no-such-port")] if stage == "run" else []
    rc = flow.main([stage, "--build", str(tmp_path / "build"), option, value, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"flow.py {stage}: error: argument {option}: {value} is not a number of images; use a count "
                          f"of 1 or more, or all; see `python flow.py {stage} --help`."), err
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("stage,option", IMAGE_OPTIONS)
def test_image_count_options_take_all_or_a_count(stage, option):
    extra = ["--port", "x"] if stage == "run" else []
    dest = option[2:].replace("-", "_")
    assert getattr(_parser(stage).parse_args([option, "all", *extra]), dest) is None
    assert getattr(_parser(stage).parse_args([option, "7", *extra]), dest) == 7
