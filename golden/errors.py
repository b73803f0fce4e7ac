"""User-facing errors shared by every stage (numpy-free, import-free)."""


class FlowError(Exception):
    """A problem the user can fix. The message is one sentence that names the problem and the fix."""


class IntModelError(FlowError):
    """The integer model file is missing, corrupt, truncated, of another version, or invalid."""
