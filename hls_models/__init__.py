"""Analytic hardware models, pure code that any stage may import: the exact cycle model of the core
(engine_cycles) and of its blocks (blocks), the resource model (resources) and the energy model (energy)."""
