"""The board top: the generated core behind a UART host link (docs/board.md)."""
