"""Knowledge distillation: a small float CNN teacher whose softened logits the Spikingformer also learns from.

The teacher never reaches the hardware: it exists during training only (its weights stay in the checkpoint, not in
the exported model). It reads the same inputs as the student (raw pixels, scaled here by 1/(2^B − 1)) under the same
augmentation, so every student batch gets the teacher's logits for exactly the images it sees.

Why a CNN teacher: on Fashion-MNIST the Spikingformer's float accuracy sits about a point below what a
non-spiking CNN of under a million parameters (this one: 768 k) reaches on two CPU cores in minutes; the teacher's soft
targets carry which wrong classes are near (shirt / T-shirt / pullover), which one-hot labels do not
(Hinton et al. 2015). The teacher trains without label smoothing: a smoothed teacher's logits lose exactly that
information (Müller et al. 2019).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# (channels, 3×3 conv-BN-ReLU layers) of each stage, a 2×2 max-pool after each: 15 M multiply-adds per 28×28 image,
# so the teacher's forward pass adds about a tenth to a Fashion-MNIST student step
TEACHER_STAGES = ((32, 1), (64, 1), (128, 2))
TEACHER_HIDDEN = 256


class Teacher(nn.Module):
    """A small float CNN for the preset's image size: stages of 3×3 convs with BN and ReLU, each followed by a 2×2
    max-pool (ceil, so an 8×8 digit and a 28×28 image both work), a 4×4 adaptive average pool, a hidden layer with
    dropout and the linear classifier."""

    def __init__(self, config: dict, stages=TEACHER_STAGES, hidden: int = TEACHER_HIDDEN):
        super().__init__()
        self.scale = 1.0 / float((1 << config["input_bits"]) - 1)
        layers, cin = [], config["in_channels"]
        for width, convs in stages:
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                           nn.ReLU(inplace=True)]
                cin = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(16 * cin, hidden),
                                        nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(hidden, config["num_classes"]))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x * self.scale)))


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) of the temperature-softened distributions, times τ² so that its gradient keeps the
    scale of the cross-entropy's as τ changes (Hinton et al. 2015)."""
    t = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
