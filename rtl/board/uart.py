"""8N1 UART receiver and transmitter, `divisor` clock cycles per bit (baud = clock / divisor)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    """`rx` is synchronised (two flip-flops); a byte is sampled in the middle of each bit. `valid` is a one-cycle
    strobe with `data`; a byte whose stop bit is low is dropped and pulses `frame_error` instead."""
    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)
    frame_error: Out(1)

    def __init__(self, divisor: int):
        assert divisor >= 4, "the receiver needs at least 4 clock cycles per bit"
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        count = Signal(range(self.divisor + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.valid.eq(0), self.frame_error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += count.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count == 0):
                    with m.If(rx):              # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [count.eq(self.divisor - 1), bit.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("DATA"):
                with m.If(count == 0):
                    m.d.sync += [shift.eq((shift >> 1) | (rx << 7)), count.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("STOP"):
                with m.If(count == 0):
                    with m.If(rx):
                        m.d.sync += [self.data.eq(shift), self.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("BREAK"):              # wait for the line to return high
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Sends `data` when `valid` and `ready` are both high; `ready` is low while a byte is on the line."""
    data: In(8)
    valid: In(1)
    ready: Out(1)
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.divisor))
        shift = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        m.d.comb += [self.ready.eq(bits == 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.valid):
                m.d.sync += [shift.eq((self.data << 1) | (1 << 9)), bits.eq(10), count.eq(self.divisor - 1)]
        with m.Elif(count == 0):
            m.d.sync += [shift.eq((shift >> 1) | (1 << 9)), bits.eq(bits - 1), count.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += count.eq(count - 1)
        return m
