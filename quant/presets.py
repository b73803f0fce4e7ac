"""Presets: model configuration (the IntModel config keys of docs/intmodel.md) plus the training recipe.

A preset is one dict; `--set KEY=VALUE` overrides any key of either part. Model keys are validated by
golden.intmodel.normalise_config, training keys here.
"""
from __future__ import annotations

import copy
import json

from flowerrors import USER_ERRORS, FlowError
from golden.intmodel import CONFIG_KEYS, normalise_config

# Training recipe defaults (the paper's, docs/model.md: AdamW, cosine with warm-up, label smoothing 0.1).
TRAIN_DEFAULTS = {
    "dataset": "digits",
    "epochs": 40,             # phase 1: QAT with BN
    "finetune_epochs": 20,    # phase 2: BN folded, weights re-quantised, bias on the accumulator grid
    "batch_size": 64,
    "lr": 2e-3,
    "finetune_lr": 1e-3,
    "weight_decay": 0.06,
    "warmup_epochs": 3,
    "label_smoothing": 0.1,
    "shift_augment": 0,       # random translation by up to this many pixels (zero fill)
    "flip_augment": False,    # mirror a random half of each batch left-right
    # the loss on each timestep's logits, averaged over timesteps (Deng et al. 2022, "temporal efficient training"),
    # instead of the loss on their mean; inference and export still use the mean (the head is affine)
    "timestep_loss": False,
    # knowledge distillation from a float CNN teacher trained first (quant/teacher.py): the student's loss is
    # (1 − distill)·CE + distill·τ²·KL of the τ-softened logits; 0: no teacher
    "distill": 0.0,
    "distill_temperature": 4.0,
    "teacher_epochs": 10,
    "val_size": 0,            # images held out of the training set (stratified, seeded) for model selection
    "seed": 0,
    # export only, so a checkpoint resumes under another value: head.w saturates at this many bits (0: never;
    # why: quant/README.md, "Export arithmetic")
    "head_weight_bits": 0,
}
EXPORT_KEYS = ("head_weight_bits",)

PRESETS = {
    # The embedded default: sklearn's 8x8 digits, pixels 0..16 -> 5 input bits, 16 tokens.
    "digits": {
        "model": {
            "T": 4, "input_bits": 5, "in_channels": 1, "image_size": [8, 8],
            "tokenizer": [{"out": 16, "pool": False}, {"out": 32, "pool": True}, {"out": 64, "pool": False}],
            "embed_dim": 64, "heads": 4, "blocks": 1, "mlp_hidden": 256, "num_classes": 10, "weight_bits": 8,
        },
        "train": {"dataset": "digits", "shift_augment": 1},
    },
    # Fashion-MNIST 28x28 -> 14 -> 7 -> 4: 16 tokens. Sized for the hardware and the CPU budget (docs/fashion-mnist.md):
    # a narrow first conv (it runs at full resolution, 8 input bit-planes), pools early, one block; 8-bit weights
    # fit the LFE5U-85F's block RAM with the head dimension 16 the 16-lane core needs. ~3.3 min/epoch on 2 cores.
    "fashion-mnist": {
        "model": {
            "T": 4, "input_bits": 8, "in_channels": 1, "image_size": [28, 28],
            # tok0 at 32 channels: its LIF is the input bottleneck (16 channels: integer 90.05 %, 32: 90.56 %)
            "tokenizer": [{"out": 32, "pool": False}, {"out": 32, "pool": True}, {"out": 64, "pool": True},
                          {"out": 128, "pool": True}],
            "embed_dim": 128, "heads": 8, "blocks": 1, "mlp_hidden": 256, "num_classes": 10, "weight_bits": 8,
        },
        # 40 QAT epochs, 1-pixel shifts, weight decay 0.01 (30 epochs, 2 pixels, 0.02: integer 90.56 %); the head
        # saturates at 9 bits, the 8-lane weight ROM's 9-bit block-RAM slices
        "train": {"dataset": "fashion-mnist", "epochs": 40, "finetune_epochs": 4, "batch_size": 128,
                  "lr": 2e-3, "finetune_lr": 2e-4, "warmup_epochs": 2, "shift_augment": 1, "flip_augment": True,
                  "val_size": 5000, "weight_decay": 0.01, "head_weight_bits": 9},
    },
    # The paper's CIFAR-10 4-384 (9,320,122 parameters), CIFAR tokenizer: 32x32 -> 8x8 = 64 tokens.
    "cifar10-4-384": {
        "model": {
            "T": 4, "input_bits": 8, "in_channels": 3, "image_size": [32, 32],
            "tokenizer": [{"out": 48, "pool": False}, {"out": 96, "pool": False}, {"out": 192, "pool": False},
                          {"out": 384, "pool": True}, {"out": 384, "pool": True}],
            "embed_dim": 384, "heads": 12, "blocks": 4, "mlp_hidden": 1536, "num_classes": 10, "weight_bits": 8,
        },
        "train": {"dataset": "cifar10", "epochs": 300, "finetune_epochs": 10, "batch_size": 64,
                  "lr": 5e-4, "finetune_lr": 5e-5, "warmup_epochs": 20, "shift_augment": 4},
    },
}


def _parse_value(key: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if key == "dataset":
            return text
        raise FlowError(f"cannot read the value of --set {key}={text}; give a number or JSON "
                        "(e.g. --set embed_dim=32 or --set tokenizer='[{\"out\":8,\"pool\":false}]').") from None


def resolve(preset: str, overrides: list[str] | None = None, weight_bits: int | None = None,
            epochs: int | None = None, finetune_epochs: int | None = None) -> tuple[dict, dict]:
    """(model config, training recipe) for a preset with `KEY=VALUE` overrides applied and checked."""
    if preset not in PRESETS:
        raise FlowError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}.")
    model = copy.deepcopy(PRESETS[preset]["model"])
    train = {**TRAIN_DEFAULTS, **PRESETS[preset]["train"]}
    given = {}
    for item in overrides or []:
        if "=" not in item:
            raise FlowError(f"--set {item} has no '='; write it as --set KEY=VALUE, e.g. --set embed_dim=32.")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in CONFIG_KEYS and key not in TRAIN_DEFAULTS:
            raise FlowError(f"unknown setting '{key}' in --set; valid keys are "
                            f"{', '.join(list(CONFIG_KEYS) + list(TRAIN_DEFAULTS))}.")
        given[key] = _parse_value(key, text)
    for key, value in (("weight_bits", weight_bits), ("epochs", epochs), ("finetune_epochs", finetune_epochs)):
        if value is not None:
            given[key] = value
    if "embed_dim" in given and "tokenizer" not in given:
        # Scale the tokenizer widths with the embedding, keeping the preset's proportions.
        old = model["embed_dim"]
        new = int(given["embed_dim"])
        model["tokenizer"] = [{"out": max(1, round(s["out"] * new / old)), "pool": s["pool"]}
                              for s in model["tokenizer"]]
        model["tokenizer"][-1]["out"] = new
        if "mlp_hidden" not in given:
            model["mlp_hidden"] = max(1, round(model["mlp_hidden"] * new / old))
    if "tokenizer" in given and "embed_dim" not in given and isinstance(given["tokenizer"], list) and given["tokenizer"]:
        try:
            model["embed_dim"] = int(given["tokenizer"][-1]["out"])
        except (TypeError, KeyError, ValueError):
            pass
    for key, value in given.items():
        (model if key in CONFIG_KEYS else train)[key] = value
    try:
        model = normalise_config(model)
    except USER_ERRORS:
        raise
    except (TypeError, KeyError, ValueError) as exc:
        raise FlowError(f"the model settings are malformed ({exc}); check the --set values against "
                        "docs/intmodel.md.") from None
    if not 2 <= model["weight_bits"] <= 16:
        raise FlowError(f"weight_bits={model['weight_bits']} is not supported; use 2..16 (8 and 4 are tested).")
    if type(train["head_weight_bits"]) is not int or not (train["head_weight_bits"] == 0
                                                              or model["weight_bits"] <= train["head_weight_bits"] <= 32):
        raise FlowError(f"head_weight_bits={train['head_weight_bits']} is invalid; use 0 (no limit) or a width from "
                        f"weight_bits ({model['weight_bits']}) to 32.")
    for key in ("epochs", "finetune_epochs", "batch_size", "warmup_epochs", "shift_augment", "seed", "val_size",
                "teacher_epochs"):
        if not isinstance(train[key], int) or train[key] < (1 if key == "batch_size" else 0):
            raise FlowError(f"{key}={train[key]} is invalid; use a non-negative integer.")
    for key in ("flip_augment", "timestep_loss"):
        if not isinstance(train[key], bool):
            raise FlowError(f"{key}={train[key]} is invalid; use true or false.")
    for key in ("lr", "finetune_lr", "weight_decay", "label_smoothing"):
        if not isinstance(train[key], (int, float)) or train[key] < 0:
            raise FlowError(f"{key}={train[key]} is invalid; use a non-negative number.")
    if not isinstance(train["distill"], (int, float)) or not 0 <= train["distill"] <= 1:
        raise FlowError(f"distill={train['distill']} is invalid; use a weight from 0 (no teacher) to 1.")
    if not isinstance(train["distill_temperature"], (int, float)) or train["distill_temperature"] <= 0:
        raise FlowError(f"distill_temperature={train['distill_temperature']} is invalid; use a positive number.")
    if train["distill"] and train["teacher_epochs"] < 1:
        raise FlowError("teacher_epochs=0 trains no teacher for distill > 0; use teacher_epochs=1 or more.")
    if train["dataset"] not in ("digits", "fashion-mnist", "cifar10"):
        raise FlowError(f"unknown dataset '{train['dataset']}'; choose digits, fashion-mnist or cifar10.")
    return model, train
