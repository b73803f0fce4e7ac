"""Golden reference (numpy only): the integer model format and the bit-exact inference of the integer contract
(docs/intmodel.md).

Modules: intmodel (format, validation, random models), primitives (one function per hardware block),
inference (whole model, with per-layer traces), widths (interval arithmetic), compare (first mismatch).
"""
