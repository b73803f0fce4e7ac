"""Artifacts under build/: where they live, how they are written, and how a stage reads one it did not write.

Numpy-free. Every stage writes its files through `atomic_write` (temp file + rename, mode 0644 under the usual umask;
`atomic_path` for a writer that wants a file name), resolves its default paths against the project (`project_path`),
not the current directory, and reads the JSON another stage wrote through `read_json`, which turns a corrupt file
into one sentence with the command that remakes it. `stale` says whether an artifact was made from the model (and
core) at hand.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile

from .errors import ArtifactError

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def project_path(*parts: str) -> str:
    """A path inside the project (the folder holding flow.py), whatever the current directory is."""
    return os.path.join(PROJECT, *parts)


def build_root(build: str | None = None) -> str:
    """The build folder: `build` as given (relative to the current directory, like any path a user types), or the
    project's build/ when it is left out or is the default name "build"."""
    if build is None or build == "build":
        return project_path("build")
    return os.path.abspath(build)


def preset_dir(preset: str, build: str | None = None) -> str:
    return os.path.join(build_root(build), preset)


def _mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str):
    """A temp file's name beside `path`, for a writer that takes a file name (torch.save, an ONNX exporter): when
    the block ends the temp file is renamed onto path with the mode a plain open() would give it (0644 under umask
    022), so a reader never sees half a file; when the block raises, the temp file is removed. An unwritable folder
    becomes an ArtifactError naming it."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
        os.close(fd)
    except OSError as exc:
        raise unwritable(exc, directory) from None
    try:
        yield tmp
        os.chmod(tmp, _mode())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise unwritable(exc, directory) from None
        raise


def atomic_write(path: str, data: bytes | str | None = None, writer=None) -> str:
    """Write `data` (or call writer(binary file)) to path through atomic_path: all of it or, on any error, nothing.
    Returns the absolute path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            if writer is not None:
                writer(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    return os.path.abspath(path)


def atomic_json(path: str, obj) -> str:
    return atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


# Set by flow.py to the running stage's output options (e.g. " or choose another with --out"), so the advice names
# only options that exist.
OUTPUT_HINT = ""


def unwritable(exc: OSError, where: str) -> ArtifactError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ArtifactError(f"cannot write in {where} ({reason}); make that folder writable{OUTPUT_HINT}.")


def read_json(path: str, what: str, command: str, required: bool = False):
    """The JSON object at path; None when the file is absent (unless required). A file that is not a JSON object
    is refused with one sentence naming the command that writes it again."""
    if not os.path.exists(path):
        if required:
            raise ArtifactError(f"{what} {path} does not exist; run `{command}` first.")
        return None
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{what} {path} is unreadable or corrupt ({type(exc).__name__}); remake it with "
                        f"`{command}`.") from None
    if not isinstance(obj, dict):
        raise ArtifactError(f"{what} {path} is not a JSON object; remake it with `{command}`.")
    return obj


def need(obj: dict, keys, path: str, what: str, command: str) -> None:
    """Refuse an artifact that lacks keys the reader relies on (written by another version of the flow)."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ArtifactError(f"{what} {path} lacks {', '.join(missing)} (written by another version of the flow); "
                        f"remake it with `{command}`.")


def stale_reason(artifact: dict | None, model_sha256: str, verilog_sha256: str | None = None,
                 model_key: str = "model_sha256", verilog_key: str = "verilog_sha256") -> str | None:
    """Why an artifact does not belong to the model (and core) at hand, or None when it does."""
    if artifact is None:
        return None
    got = artifact.get(model_key)
    if got != model_sha256:
        return (f"it was made from model {str(got)[:12]}, not the current model {model_sha256[:12]}" if got else
                "it does not record which model it was made from")
    if verilog_sha256 is not None:
        got = artifact.get(verilog_key)
        if got != verilog_sha256:
            return (f"it was made from core {str(got)[:12]}, not the current core {verilog_sha256[:12]}" if got else
                    "it does not record which core it was made from")
    return None
