"""The integer model (IntModel): configuration, arrays, file format, validation and random models.

The file format is documented in docs/intmodel.md. Everything here depends on numpy only.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib

import numpy as np

from .artifacts import atomic_write
from .errors import ConfigError, DatasetError, GoldenError, InputError, IntModelError

FORMAT_NAME = "spikingformer-intmodel"
FORMAT_VERSION = 2       # 2: adds meta_sha256 (meta is checked too); version 1 files are read with their meta dropped
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
        raise ConfigError(f"unknown configuration key(s) {sorted(unknown)}; valid keys are {list(CONFIG_KEYS)}.")
    config.update(overrides)
    if "tokenizer" in overrides and "embed_dim" not in overrides:
        config["embed_dim"] = config["tokenizer"][-1]["out"]
    return normalise_config(config)


# Bounds a configuration must keep (inclusive). They are wide enough for every preset (the paper's CIFAR-10 model
# included) and keep a mistyped value from asking for terabytes of arrays.
LIMITS = {"T": (1, 16), "input_bits": (1, 16), "in_channels": (1, 4096), "embed_dim": (1, 4096), "heads": (1, 4096),
          "blocks": (0, 64), "mlp_hidden": (1, 65536), "num_classes": (2, 65536), "weight_bits": (2, 16),
          "image_size": (1, 4096), "out": (1, 4096), "stages": (1, 16)}


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"configuration value {what}={value!r} is not an integer; give a whole number in {lo}..{hi}.")
    value = int(value)
    if not lo <= value <= hi:
        if what == "T" and value > hi:
            raise ConfigError(f"T={value} exceeds 16 timesteps, the most the spike words support; use T <= 16.")
        raise ConfigError(f"configuration value {what}={value} is out of range; use {lo}..{hi}.")
    return value


def normalise_config(config: dict) -> dict:
    """Check a configuration and return it with canonical types (so hashes are stable). Every problem is one
    sentence: IntModelError for a configuration that is not a whole one (not an object, keys missing or unknown),
    ConfigError for a value outside the contract; nothing else escapes, whatever `config` holds."""
    if not isinstance(config, dict):
        raise IntModelError(f"the model configuration is a {type(config).__name__}, not an object; re-export the "
                            "model with `python flow.py train-quant`.")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise IntModelError(f"the model configuration lacks {missing}; re-export the model with `python flow.py train-quant`.")
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise IntModelError(f"the model configuration has unknown key(s) {unknown}; valid keys are {list(CONFIG_KEYS)}.")
    c = {k: config[k] for k in CONFIG_KEYS}
    for k in ("T", "input_bits", "in_channels", "embed_dim", "heads", "blocks", "mlp_hidden", "num_classes",
              "weight_bits"):
        c[k] = _int(c[k], k, *LIMITS[k])
    size = c["image_size"]
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ConfigError(f"image_size={size!r} is not [H, W]; give two positive integers, e.g. --set image_size=[8,8].")
    c["image_size"] = [_int(v, "image_size", *LIMITS["image_size"]) for v in size]
    stages = c["tokenizer"]
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ConfigError("the tokenizer needs at least one stage; give at least the first conv.")
    if len(stages) > LIMITS["stages"][1]:
        raise ConfigError(f"the tokenizer has {len(stages)} stages; use at most {LIMITS['stages'][1]}.")
    tok = []
    for i, s in enumerate(stages):
        if not isinstance(s, dict) or set(s) != {"out", "pool"} or not isinstance(s["pool"], bool):
            raise ConfigError(f"tokenizer stage {i} is {s!r}; write each stage as {{\"out\": channels, \"pool\": true|false}}.")
        tok.append({"out": _int(s["out"], f"tokenizer[{i}].out", *LIMITS["out"]), "pool": s["pool"]})
    c["tokenizer"] = tok
    if c["tokenizer"][0]["pool"]:
        raise ConfigError("tokenizer stage 0 is the first conv and cannot pool; move the pool to a later stage.")
    if c["tokenizer"][-1]["out"] != c["embed_dim"]:
        raise ConfigError(f"the last tokenizer stage has {c['tokenizer'][-1]['out']} channels but embed_dim is "
                        f"{c['embed_dim']}; make them equal.")
    if c["embed_dim"] % c["heads"]:
        raise ConfigError(f"embed_dim {c['embed_dim']} is not divisible by heads {c['heads']}; choose heads that divide it.")
    if c["blocks"] == 0 and len(c["tokenizer"]) == 1:
        raise ConfigError("with blocks=0 and a one-stage tokenizer the model has no spiking layer; add a transformer "
                        "block or a tokenizer stage.")
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
    """The model's identity: SHA-256 over the canonical JSON of the config, then per array (sorted by name): name,
    NUL, shape, NUL, little-endian int64 bytes (docs/intmodel.md). Provenance (`meta`) is not part of it: two
    files with the same network are the same model for every stage."""
    h = hashlib.sha256(_canonical_json(config))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<i8")
        h.update(name.encode() + b"\0" + str(a.shape).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


def meta_hash(meta: dict) -> str:
    """SHA-256 of the canonical JSON of `meta` (format version 2 stores it as `meta_sha256`)."""
    return hashlib.sha256(_canonical_json(meta)).hexdigest()


class ModelShape:
    """The network's shape from a config alone (no arrays): what golden.graph.steps and the stages' layouts read.
    IntModel is a ModelShape with its arrays; the export builds its layer walk from one before the arrays exist."""

    def __init__(self, config: dict):
        self.config = normalise_config(config)

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


class IntModel(ModelShape):
    """An integer Spikingformer: `config` (dict) and `arrays` (name -> int64 ndarray), see docs/intmodel.md."""

    def __init__(self, config: dict, arrays: dict[str, np.ndarray], meta: dict | None = None):
        super().__init__(config)
        self.arrays = {k: np.asarray(v).astype(np.int64) for k, v in arrays.items()}
        self.meta = dict(meta or {})
        try:
            _canonical_json(self.meta)
        except (TypeError, ValueError):
            raise IntModelError("the model's meta holds values JSON cannot store; keep it to strings, numbers, "
                                "lists and objects.") from None
        validate(self)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

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
            raise InputError(f"input has shape {tuple(x.shape)} but the model expects [B, {', '.join(map(str, self.input_shape))}]; "
                            "reshape the images to the model's input shape.")
        if not np.issubdtype(x.dtype, np.integer):
            if not np.all(np.equal(np.mod(x, 1), 0)):
                raise InputError("input pixels must be unsigned integers; quantise the images to integers first.")
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        top = (1 << self.input_bits) - 1
        if lo < 0 or hi > top:
            raise InputError(f"input pixels span {lo}..{hi} but the model takes 0..{top} ({self.input_bits} bits); "
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


def save(model: IntModel, path: str) -> str:
    """Write the model atomically (temp file + rename, mode 0644); returns its content hash."""
    digest = model.sha256
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": model.config,
        "arrays": {k: {"dtype": "int64", "shape": list(v.shape)} for k, v in sorted(model.arrays.items())},
        "sha256": digest,
        "meta": model.meta,
        "meta_sha256": meta_hash(model.meta),
    }

    def write(f):
        # int64 arrays of small integers deflate about 8x (zoo files are reviewed in git); a fixed date and level
        # keep the bytes of the same model identical.
        packed = dict(compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        with zipfile.ZipFile(f, "w") as z:
            z.writestr(zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0)),
                       json.dumps(manifest, indent=1, sort_keys=True), **packed)
            for name in sorted(model.arrays):
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(model.arrays[name], dtype="<i8"), allow_pickle=False)
                z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(), **packed)

    atomic_write(path, writer=write)
    return digest


TRAIN = "python flow.py train-quant"
MAX_MEMBER_BYTES = 1 << 31      # no array of any preset comes near this; a bigger member is a hostile file


def load(path: str, command: str = TRAIN) -> IntModel:
    """Read and verify a model file; every problem becomes an IntModelError naming `command`, the command that
    writes the file again (callers pass it with their --preset)."""
    redo = f"re-export it with `{command}`"
    if not os.path.exists(path):
        raise IntModelError(f"model file {path} does not exist; run `{command}` first.")
    if os.path.isdir(path):
        raise IntModelError(f"model path {path} is a folder, not a model file; give the intmodel.zip inside it.")
    try:
        with zipfile.ZipFile(path) as z:
            infos = {i.filename: i for i in z.infolist()}
            if MANIFEST not in infos:
                raise IntModelError(f"{path} has no manifest, so it is not an integer model file; {redo}.")
            if len(infos) != len(z.infolist()):
                raise IntModelError(f"{path} holds a member twice; {redo}.")
            if any(i.file_size > MAX_MEMBER_BYTES for i in infos.values()):
                raise IntModelError(f"{path} holds a member larger than any model array; {redo}.")
            manifest = json.loads(z.read(MANIFEST).decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise IntModelError(f"{path} is not a {FORMAT_NAME} file; {redo}.")
            version = manifest.get("version")
            if version not in (1, FORMAT_VERSION) or isinstance(version, bool):
                raise IntModelError(f"{path} is format version {version} but this flow reads version "
                                    f"{FORMAT_VERSION}; {redo}.")
            declared = manifest.get("arrays")
            meta = manifest.get("meta", {})
            if not isinstance(declared, dict) or not isinstance(meta, dict) or not isinstance(manifest.get("sha256"), str):
                raise IntModelError(f"{path} has a malformed manifest (arrays, meta or sha256); {redo}.")
            if version == 1:
                meta = {}      # version 1 had no check over meta: unverified provenance is dropped, not trusted
            elif manifest.get("meta_sha256") != meta_hash(meta):
                raise IntModelError(f"{path} fails its meta hash check (its meta was edited or corrupted); {redo}.")
            extra = sorted(set(infos) - {MANIFEST} - {str(n) + ".npy" for n in declared})
            if extra:
                raise IntModelError(f"{path} holds member(s) {extra[:3]} that its manifest does not list; {redo}.")
            arrays = {}
            for name, info in declared.items():
                member = name + ".npy"
                if member not in infos:
                    raise IntModelError(f"{path} lacks array {name}; the file is truncated or corrupt, {redo}.")
                if not isinstance(info, dict) or info.get("dtype") != "int64" or not isinstance(info.get("shape"), list):
                    raise IntModelError(f"array {name} in {path} is not declared as int64 with a shape; {redo}.")
                a = np.load(io.BytesIO(z.read(member)), allow_pickle=False)
                if list(a.shape) != list(info["shape"]):
                    raise IntModelError(f"array {name} in {path} has shape {list(a.shape)} but the manifest says "
                                        f"{info['shape']}; {redo}.")
                if a.dtype != np.dtype("<i8"):
                    raise IntModelError(f"array {name} in {path} is {a.dtype} but the manifest says int64; {redo}.")
                arrays[name] = a
    except IntModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError,
            UnicodeDecodeError, RuntimeError, NotImplementedError) as exc:
        raise IntModelError(f"{path} is corrupt or truncated ({type(exc).__name__}); {redo}.") from None
    try:
        config = normalise_config(manifest.get("config"))
        if content_hash(config, arrays) != manifest["sha256"]:
            raise IntModelError(f"{path} fails its content hash check (the file was modified or corrupted); {redo}.")
        return IntModel(config, arrays, meta)
    except GoldenError as exc:      # name the caller's command (with its --preset) in the advice
        raise type(exc)(str(exc).replace(f"`{TRAIN}`", f"`{command}`")) from None


def stratified_subset(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of a fixed, class-balanced subset of `count` test images: each class gives its first images in
    test-set order (count // classes each, one more for the first count % classes classes, fewer when a class runs
    out, the rest then taken from the others in order). The same labels and count always give the same indices,
    sorted, so a partial hardware run stays comparable across runs and machines."""
    labels = np.asarray(labels)
    if count >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    share = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    chosen = np.concatenate([np.flatnonzero(labels == c)[:n] for c, n in zip(classes, share)])
    if len(chosen) < count:     # a small class ran out: fill from the remaining images in order
        rest = np.setdiff1d(np.arange(len(labels)), chosen)
        chosen = np.concatenate([chosen, rest[:count - len(chosen)]])
    return np.sort(chosen)


def save_testset(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Test images (unsigned ints [N, Cin, H, W]) and labels, for the stages that must not import quant/."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError("a test set needs images [N, Cin, H, W] and N labels; fix the exporter.")

    def write(f):
        np.savez(f, images=images.astype(np.int64), labels=labels.astype(np.int64))
    atomic_write(path, writer=write)


def load_testset(path: str, command: str = TRAIN) -> tuple[np.ndarray, np.ndarray]:
    """(images int64 [N, Cin, H, W], labels int64 [N]); a missing, truncated or malformed file is one DatasetError
    naming `command`, the command that writes it again."""
    redo = f"rerun `{command}`"
    if not os.path.exists(path):
        raise DatasetError(f"test set {path} does not exist; run `{command}` first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files") or set(z.files) != {"images", "labels"}:
                raise DatasetError(f"test set {path} does not hold exactly the arrays images and labels; {redo}.")
            images, labels = z["images"], z["labels"]
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError,
            NotImplementedError, TypeError) as exc:
        raise DatasetError(f"test set {path} is corrupt or truncated ({type(exc).__name__}); {redo}.") from None
    if not (np.issubdtype(images.dtype, np.integer) and np.issubdtype(labels.dtype, np.integer)):
        raise DatasetError(f"test set {path} holds {images.dtype} images / {labels.dtype} labels, not integers; {redo}.")
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels) or len(images) == 0:
        raise DatasetError(f"test set {path} has images {list(images.shape)} and labels {list(labels.shape)}, not "
                        f"[N, Cin, H, W] and [N] with N >= 1; {redo}.")
    return images.astype(np.int64), labels.astype(np.int64)


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
