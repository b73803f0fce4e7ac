"""The flow's user-facing errors, for the stages and their command lines (the golden package has its own, plain ones).

A stage raises FlowError for a problem the user can fix; the message is one sentence that names the problem and the
fix. flow.py prints every USER_ERRORS exception as `flow.py STAGE: error: SENTENCE` and exits with status 2.
"""
import argparse

from golden.errors import GoldenError


class FlowError(Exception):
    """A problem the user can fix, found by a stage (not by the reference model)."""


# what flow.py turns into one sentence + exit 2: a stage's refusal, or the reference model's
USER_ERRORS = (FlowError, GoldenError)


def image_count(value) -> int | None:
    """The argparse type of every image-count option (`--images`, `--bench-images`): a positive N, the first N test
    images, or `all` (None: every test image). argparse reports a bad value before the stage reads or writes
    anything."""
    text = str(value).strip()
    if text == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number of images; use a count of 1 or more, or all.")
    return n
