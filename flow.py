#!/usr/bin/env python3
"""Spikingformer hardware co-design flow: a thin command line over the stages.

    python flow.py train-quant   Brevitas QAT, BN folding, integer export        (quant/)
    python flow.py gen-rtl       Amaranth core generated from the integer model   (rtl/)
    python flow.py sim           cocotb + Verilator regression against golden     (sim/)
    python flow.py synth         Yosys + nextpnr (ECP5 / iCE40) reports           (tools/synth.py)
    python flow.py explore       design-space sweep with the analytic models      (tools/explore.py, hls_models/)
    python flow.py report        one offline HTML report                          (tools/report.py)
    python flow.py bench         synthesis benchmark, refreshes docs/bench/       (tools/bench.py)
    python flow.py bitstream     board top + bitstream (ULX3S-85F)                (tools/bitstream.py, rtl/board/)
    python flow.py run           stream the test set through the board's UART     (host/)
    python flow.py seeds         accuracy over several training seeds, mean ± std (quant/seeds.py)

Each stage module exposes `add_arguments(parser)` and `main(args) -> int`. A user error (a stage's
`flowerrors.FlowError`, the reference model's `golden.errors.GoldenError`) is printed as one sentence, without a
traceback, and exits with status 2.
"""
import argparse
import importlib
import sys

# subcommand -> (module, one-line help). Modules are imported lazily so `--help` stays fast.
STAGES = {
    "train-quant": ("quant.cli", "quantisation-aware training and integer export"),
    "gen-rtl": ("rtl.cli", "generate the core's Verilog from the integer model"),
    "sim": ("sim.cli", "simulate the core (fast harness, Verilator or Icarus, sharded) against the golden model"),
    "synth": ("tools.synth", "synthesise with Yosys + nextpnr and write report.json"),
    "explore": ("tools.explore", "sweep generics with the analytic models, synthesise Pareto points"),
    "report": ("tools.report", "write the HTML report"),
    "bench": ("tools.bench", "run the benchmarks and refresh stored results"),
    "bitstream": ("tools.bitstream", "build the board top's bitstream (Yosys + nextpnr-ecp5 + ecppack)"),
    "run": ("host.cli", "stream the test set through the board over its serial port, checked against golden"),
    "seeds": ("quant.seeds", "train with several seeds and write the accuracy mean ± std"),
}

# stages that read build/<preset>/intmodel.zip and so can start from the model zoo (models/<preset>/)
ZOO_USERS = ("gen-rtl", "sim", "synth", "explore", "report", "bench", "run")


class _BadOption(Exception):
    pass


class _StageParser(argparse.ArgumentParser):
    """A stage's options: a bad one raises instead of printing the usage and exiting, so main() reports it as one
    sentence with exit status 2."""

    def error(self, message):
        raise _BadOption(message)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="flow.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in STAGES.items():
        sub.add_parser(name, help=help_text, add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] not in STAGES:
        parser.print_usage(sys.stderr)
        print(f"flow.py: error: unknown command '{argv[0]}'; choose one of: {', '.join(STAGES)}.",
              file=sys.stderr)
        return 2
    module_name, help_text = STAGES[argv[0]]
    from flowerrors import USER_ERRORS
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(f"flow.py: error: stage '{argv[0]}' is not available ({exc}); run `make venv` first.",
              file=sys.stderr)
        return 2
    stage_parser = _StageParser(prog=f"flow.py {argv[0]}", description=help_text)
    module.add_arguments(stage_parser)
    try:
        args = stage_parser.parse_args(argv[1:])
    except _BadOption as exc:        # one sentence, like every other user error, before anything is read or written
        text = str(exc).rstrip(".")
        print(f"flow.py {argv[0]}: error: {text}; see `python flow.py {argv[0]} --help`.", file=sys.stderr)
        return 2
    from golden import artifacts
    outputs = [o for o in ("--out", "--build") if o in stage_parser._option_string_actions]
    artifacts.OUTPUT_HINT = f" or choose another folder with {' or '.join(outputs)}" if outputs else ""
    try:
        if argv[0] in ZOO_USERS and getattr(args, "preset", None) and not getattr(args, "model", None):
            from quant.zoo import provide   # build/<preset>/ without a model: take the shipped one, saying so
            provide(args.preset, artifacts.build_root(getattr(args, "build", None)))
        return int(module.main(args) or 0)
    except USER_ERRORS as exc:
        print(f"flow.py {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder the stage cannot write or read (read-only, full disk, missing permission)
        where = exc.filename or "the output folder"
        print(f"flow.py {argv[0]}: error: cannot use {where} ({exc.strerror or type(exc).__name__}); make it "
              f"accessible{artifacts.OUTPUT_HINT}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flow.py {argv[0]}: interrupted; finished artifacts are kept, rerun to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
