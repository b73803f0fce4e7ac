"""The flow's user-facing errors, for the stages and their command lines (the golden package has its own, plain ones).

A stage raises FlowError for a problem the user can fix; the message is one sentence that names the problem and the
fix. flow.py prints every USER_ERRORS exception as `flow.py STAGE: error: SENTENCE` and exits with status 2.
"""
from golden.errors import GoldenError


class FlowError(Exception):
    """A problem the user can fix, found by a stage (not by the reference model)."""


# what flow.py turns into one sentence + exit 2: a stage's refusal, or the reference model's
USER_ERRORS = (FlowError, GoldenError)
