"""Analytic resource model (LUT4, FF, BRAM) per block and for the whole core. (Being written.)"""
from __future__ import annotations


def estimate_from_manifest(manifest: dict | None) -> dict | None:
    return None
