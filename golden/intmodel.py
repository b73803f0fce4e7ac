"""The integer model (IntModel): configuration, arrays, file format, validation and random models.

The file format is documented in docs/intmodel.md. Everything here depends on numpy only.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import FlowError, IntModelError

FORMAT_NAME = "spikingformer-intmodel"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

CONFIG_KEYS = ("T", "input_bits", "in_channels", "image_size", "tokenizer", "embed_dim", "heads", "blocks",
               "mlp_hidden", "num_classes", "weight_bits")


def make_config(**overrides) -> dict:
    """The configuration of the embedded default (sklearn digits), with keyword overrides."""
    config = {
        "T": 4,
        "input_bits": 5,          # digits pixels are 0..16
        "in_channels": 1,
        "image_size": [8, 8],
        "tokenizer": [{"out": 16, "pool": False}, {"out": 32, "pool": True}, {"out": 64, "pool": False}],
        "embed_dim": 64,
        "heads": 4,
        "blocks": 1,
        "mlp_hidden": 256,
        "num_classes": 10,
        "weight_bits": 8,
    }
    unknown = set(overrides) - set(CONFIG_KEYS)
    if unknown:
        raise FlowError(f"unknown configuration key(s) {sorted(unknown)}; valid keys are {list(CONFIG_KEYS)}.")
    config.update(overrides)
    if "tokenizer" in overrides and "embed_dim" not in overrides:
        config["embed_dim"] = config["tokenizer"][-1]["out"]
    return normalise_config(config)


def normalise_config(config: dict) -> dict:
    """Check a configuration and return it with canonical types (so hashes are stable)."""
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise IntModelError(f"the model configuration lacks {missing}; re-export the model with `python flow.py train-quant`.")
    c = {k: config[k] for k in CONFIG_KEYS}
    for k in ("T", "input_bits", "in_channels", "embed_dim", "heads", "blocks", "mlp_hidden", "num_classes",
              "weight_bits"):
        c[k] = int(c[k])
        if c[k] < (0 if k == "blocks" else 1):
            raise FlowError(f"configuration value {k}={c[k]} is out of range; use a positive integer.")
    c["image_size"] = [int(v) for v in c["image_size"]]
    c["tokenizer"] = [{"out": int(s["out"]), "pool": bool(s["pool"])} for s in c["tokenizer"]]
    if len(c["tokenizer"]) < 1:
        raise FlowError("the tokenizer needs at least one stage; give at least the first conv.")
    if c["tokenizer"][0]["pool"]:
        raise FlowError("tokenizer stage 0 is the first conv and cannot pool; move the pool to a later stage.")
    if c["tokenizer"][-1]["out"] != c["embed_dim"]:
        raise FlowError(f"the last tokenizer stage has {c['tokenizer'][-1]['out']} channels but embed_dim is "
                        f"{c['embed_dim']}; make them equal.")
    if c["embed_dim"] % c["heads"]:
        raise FlowError(f"embed_dim {c['embed_dim']} is not divisible by heads {c['heads']}; choose heads that divide it.")
    if c["T"] > 16:
        raise FlowError(f"T={c['T']} exceeds 16 timesteps, the most the spike words support; use T <= 16.")
    return c


def stage_shapes(config: dict) -> list[tuple[int, int, int, int]]:
    """Per tokenizer stage: (in_channels, out_channels, H, W) of the conv's input/output map."""
    h, w = config["image_size"]
    cin = config["in_channels"]
    shapes = []
    for stage in config["tokenizer"]:
        if stage["pool"]:
            h, w = (h + 1) // 2, (w + 1) // 2
        shapes.append((cin, stage["out"], h, w))
        cin = stage["out"]
    return shapes


def array_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every array the model must hold, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    stages = stage_shapes(config)
    for i, (cin, cout, _, _) in enumerate(stages):
        shapes[f"tok{i}.w"] = (cout, cin, 3, 3)
        shapes[f"tok{i}.b"] = (cout,)
        if i < len(stages) - 1:
            shapes[f"tok{i}.theta"] = (cout,)
    c, ch = config["embed_dim"], config["mlp_hidden"]
    for j in range(config["blocks"]):
        p = f"blk{j}."
        shapes[p + "ssa_theta"] = (c,)
        for name in ("q", "k", "v"):
            shapes[p + name + ".w"] = (c, c)
            shapes[p + name + ".b"] = (c,)
            shapes[p + name + ".theta"] = (c,)
        shapes[p + "proj.w"] = (c, c)
        shapes[p + "proj.b"] = (c,)
        shapes[p + "mlp_theta"] = (c,)
        shapes[p + "fc1.w"] = (ch, c)
        shapes[p + "fc1.b"] = (ch,)
        shapes[p + "fc1.theta"] = (ch,)
        shapes[p + "fc2.w"] = (c, ch)
        shapes[p + "fc2.b"] = (c,)
    shapes["head.w"] = (config["num_classes"], c)
    shapes["head.b"] = (config["num_classes"],)
    return shapes


def _canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def content_hash(config: dict, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(_canonical_json(config))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<i8")
        h.update(name.encode() + b"\0" + str(a.shape).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


class IntModel:
    """An integer Spikingformer: `config` (dict) and `arrays` (name -> int64 ndarray), see docs/intmodel.md."""

    def __init__(self, config: dict, arrays: dict[str, np.ndarray], meta: dict | None = None):
        self.config = normalise_config(config)
        self.arrays = {k: np.asarray(v).astype(np.int64) for k, v in arrays.items()}
        self.meta = dict(meta or {})
        validate(self)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    # Shape helpers used by every stage.
    T = property(lambda self: self.config["T"])
    C = property(lambda self: self.config["embed_dim"])
    heads = property(lambda self: self.config["heads"])
    d = property(lambda self: self.config["embed_dim"] // self.config["heads"])
    blocks = property(lambda self: self.config["blocks"])
    mlp_hidden = property(lambda self: self.config["mlp_hidden"])
    num_classes = property(lambda self: self.config["num_classes"])
    input_bits = property(lambda self: self.config["input_bits"])
    stages = property(lambda self: self.config["tokenizer"])
    stage_shapes = property(lambda self: stage_shapes(self.config))
    input_shape = property(lambda self: (self.config["in_channels"], *self.config["image_size"]))

    @property
    def tokens(self) -> int:
        _, _, h, w = self.stage_shapes[-1]
        return h * w

    @property
    def sha256(self) -> str:
        return content_hash(self.config, self.arrays)

    def weight_count(self) -> int:
        return int(sum(a.size for k, a in self.arrays.items() if k.endswith(".w")))

    def check_images(self, images) -> np.ndarray:
        """Validate an input batch [B, Cin, H, W] (or one image [Cin, H, W]); returns int64 [B, Cin, H, W]."""
        x = np.asarray(images)
        if x.ndim == len(self.input_shape):
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise FlowError(f"input has shape {tuple(x.shape)} but the model expects [B, {', '.join(map(str, self.input_shape))}]; "
                            "reshape the images to the model's input shape.")
        if not np.issubdtype(x.dtype, np.integer):
            if not np.all(np.equal(np.mod(x, 1), 0)):
                raise FlowError("input pixels must be unsigned integers; quantise the images to integers first.")
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        top = (1 << self.input_bits) - 1
        if lo < 0 or hi > top:
            raise FlowError(f"input pixels span {lo}..{hi} but the model takes 0..{top} ({self.input_bits} bits); "
                            "rescale the images to that range.")
        return x.astype(np.int64)


def validate(model: IntModel) -> None:
    expected = array_shapes(model.config)
    missing = sorted(set(expected) - set(model.arrays))
    extra = sorted(set(model.arrays) - set(expected))
    if missing or extra:
        raise IntModelError(f"the model's arrays do not match its configuration (missing {missing[:3]}, unexpected "
                            f"{extra[:3]}); re-export it with `python flow.py train-quant`.")
    for name, shape in expected.items():
        if tuple(model.arrays[name].shape) != shape:
            raise IntModelError(f"array {name} has shape {tuple(model.arrays[name].shape)}, expected {shape}; "
                                "re-export the model with `python flow.py train-quant`.")
        if name.endswith("theta") and model.arrays[name].min() < 1:
            raise IntModelError(f"array {name} holds a threshold below 1, which no LIF here can have; "
                                "re-export the model with `python flow.py train-quant`.")


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the artifact should be as readable as any file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(model: IntModel, path: str) -> str:
    """Write the model atomically (temp file + rename); returns its content hash."""
    digest = model.sha256
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": model.config,
        "arrays": {k: {"dtype": "int64", "shape": list(v.shape)} for k, v in sorted(model.arrays.items())},
        "sha256": digest,
        "meta": model.meta,
    }

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0)),
                       json.dumps(manifest, indent=1, sort_keys=True))
            for name in sorted(model.arrays):
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(model.arrays[name], dtype="<i8"), allow_pickle=False)
                z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())

    _atomic_write(path, write)
    return digest


def load(path: str) -> IntModel:
    """Read and verify a model file; every problem becomes an IntModelError with the fix."""
    redo = "re-export it with `python flow.py train-quant`"
    if not os.path.exists(path):
        raise IntModelError(f"model file {path} does not exist; run `python flow.py train-quant` first or pass --model.")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if MANIFEST not in names:
                raise IntModelError(f"{path} has no manifest, so it is not an integer model file; {redo}.")
            manifest = json.loads(z.read(MANIFEST))
            if manifest.get("format") != FORMAT_NAME:
                raise IntModelError(f"{path} is not a {FORMAT_NAME} file; {redo}.")
            if manifest.get("version") != FORMAT_VERSION:
                raise IntModelError(f"{path} is format version {manifest.get('version')} but this flow reads version "
                                    f"{FORMAT_VERSION}; {redo}.")
            arrays = {}
            for name, info in manifest["arrays"].items():
                member = name + ".npy"
                if member not in names:
                    raise IntModelError(f"{path} lacks array {name}; the file is truncated or corrupt, {redo}.")
                a = np.load(io.BytesIO(z.read(member)), allow_pickle=False)
                if list(a.shape) != list(info["shape"]) or not np.issubdtype(a.dtype, np.integer):
                    raise IntModelError(f"array {name} in {path} disagrees with the manifest; {redo}.")
                arrays[name] = a
    except IntModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise IntModelError(f"{path} is corrupt or truncated ({type(exc).__name__}); {redo}.") from None
    if content_hash(normalise_config(manifest["config"]), arrays) != manifest.get("sha256"):
        raise IntModelError(f"{path} fails its content hash check (the file was modified or corrupted); {redo}.")
    return IntModel(manifest["config"], arrays, manifest.get("meta"))


def save_testset(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Test images (unsigned ints [N, Cin, H, W]) and labels, for the stages that must not import quant/."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or len(images) != len(labels):
        raise FlowError("a test set needs images [N, Cin, H, W] and N labels; fix the exporter.")
    _atomic_write(path, lambda f: np.savez(f, images=images.astype(np.int64), labels=labels.astype(np.int64)))


def load_testset(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.exists(path):
        raise FlowError(f"test set {path} does not exist; run `python flow.py train-quant` first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["images"].astype(np.int64), z["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise FlowError(f"test set {path} is corrupt ({type(exc).__name__}); rerun `python flow.py train-quant`.") from None


def random_intmodel(config: dict | None = None, seed: int = 0, weight_bits: int | None = None,
                    firing: float = 0.25) -> IntModel:
    """A random IntModel whose LIF thresholds are set from the layers' own statistics so that roughly
    `firing` of the neurons spike: useful for testing hardware on shapes no one trained.

    Thresholds are computed by running the golden inference on random inputs and taking a per-channel quantile
    of the LIF inputs, layer by layer, so every layer sees realistic activity.
    """
    from . import primitives as P  # local import: primitives imports nothing from here

    config = normalise_config(config or make_config())
    wb = weight_bits or config["weight_bits"]
    rng = np.random.default_rng(seed)
    wmax = (1 << (wb - 1)) - 1
    shapes = array_shapes(config)
    arrays = {}
    for name, shape in shapes.items():
        if name.endswith(".w"):
            arrays[name] = rng.integers(-wmax, wmax + 1, size=shape)
        elif name.endswith(".b"):
            arrays[name] = rng.integers(-2 * wmax, 2 * wmax + 1, size=shape)
        else:
            arrays[name] = np.ones(shape, dtype=np.int64)  # placeholder, calibrated below

    T = config["T"]
    images = rng.integers(0, 1 << config["input_bits"], size=(8, config["in_channels"], *config["image_size"]))
    q = 1.0 - firing

    def calibrate(x: np.ndarray, axis_c: int) -> np.ndarray:
        # LIF fires at step 1 when X·2^T/2 >= theta; a quantile of that value per channel gives the target rate.
        moved = np.moveaxis(x, axis_c, 0).reshape(x.shape[axis_c], -1)
        level = np.quantile(moved, q, axis=1) * (1 << T) / 2
        return np.maximum(1, np.round(level)).astype(np.int64)

    stages = stage_shapes(config)
    acc = np.broadcast_to(P.conv3x3(images, arrays["tok0.w"], arrays["tok0.b"]),
                          (T, len(images), *P.conv3x3(images[:1], arrays["tok0.w"], arrays["tok0.b"]).shape[1:]))
    for i in range(1, len(stages)):
        arrays[f"tok{i-1}.theta"] = calibrate(acc, 2)
        s = P.lif(acc, arrays[f"tok{i-1}.theta"][:, None, None], T)
        if config["tokenizer"][i]["pool"]:
            s = P.or_pool(s)
        acc = P.spike_conv3x3(s, arrays[f"tok{i}.w"], arrays[f"tok{i}.b"])
    x = acc.reshape(*acc.shape[:3], -1)
    for j in range(config["blocks"]):
        p = f"blk{j}."
        arrays[p + "ssa_theta"] = calibrate(x, 2)
        s = P.lif(x, arrays[p + "ssa_theta"][:, None], T)
        qkv = {}
        for name in ("q", "k", "v"):
            a = P.spike_linear(s, arrays[p + name + ".w"], arrays[p + name + ".b"])
            arrays[p + name + ".theta"] = calibrate(a, 2)
            qkv[name] = P.lif(a, arrays[p + name + ".theta"][:, None], T)
        _, y = P.attention(qkv["q"], qkv["k"], qkv["v"], config["heads"])
        att = P.lif(y, P.attn_theta(T), T)
        x = x + P.spike_linear(att, arrays[p + "proj.w"], arrays[p + "proj.b"])
        arrays[p + "mlp_theta"] = calibrate(x, 2)
        s2 = P.lif(x, arrays[p + "mlp_theta"][:, None], T)
        a1 = P.spike_linear(s2, arrays[p + "fc1.w"], arrays[p + "fc1.b"])
        arrays[p + "fc1.theta"] = calibrate(a1, 2)
        h = P.lif(a1, arrays[p + "fc1.theta"][:, None], T)
        x = x + P.spike_linear(h, arrays[p + "fc2.w"], arrays[p + "fc2.b"])
    return IntModel(config, arrays, {"source": f"random_intmodel(seed={seed}, weight_bits={wb}, firing={firing})"})
