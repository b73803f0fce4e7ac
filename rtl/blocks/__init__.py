"""Standalone, parameterised building blocks of the spiking core (issue 3), each verified against its golden/
twin by sim/test_blocks.py. Every block is a wiring.Component with flat packed ports (element 0 in the low bits)
and a docstring that gives its latency and throughput; hls_models/block_cycles.py holds the matching formulas."""
from .lif import LifArray

__all__ = ["LifArray"]
