"""What the reference model refuses (numpy-free, import-free).

Plain exceptions, all ValueError subclasses: the message is one sentence that names the problem and the fix. The
golden package knows nothing of a command line; flow.py (flowerrors.USER_ERRORS) prints these as a stage's one-line
error with exit status 2.
"""


class GoldenError(ValueError):
    """Something handed to the reference model that it refuses."""


class ConfigError(GoldenError):
    """A model configuration outside the integer contract (docs/intmodel.md)."""


class IntModelError(GoldenError):
    """The integer model file is missing, corrupt, truncated, of another version, or invalid."""


class InputError(GoldenError):
    """Images that do not fit the model: wrong shape, not integers, or pixels outside the input range."""


class DatasetError(GoldenError):
    """The stored test set (testset.npz) is missing, corrupt or malformed."""


class ArtifactError(GoldenError):
    """An artifact under build/ cannot be written, or one another stage wrote cannot be read."""


class WidthError(GoldenError):
    """The model needs a word wider than the hardware supports."""
