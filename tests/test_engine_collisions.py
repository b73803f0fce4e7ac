"""The core never reads a RAM row in the cycle it writes that row.

The core's RAMs promise Yosys that such a read does not happen (rtl/engine/memories.RAM_COLLISIONS), so synthesis
builds no collision bypass behind them; on the FPGA the read would return whatever the block RAM gives. This test
runs whole inferences of small random models in the Amaranth simulator and checks every cycle of every RAM: a write
and an enabled read of the same row in one cycle, in a layer that uses that RAM's reads (SpikeEngine.ram_reads_used),
fails, naming the RAM, the cycle and the row. Without that qualification it finds the core's harmless collisions
(the activation RAM's row address during the first conv, which reads the image RAM), so the check is not vacuous.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import intmodel as im
from golden.inference import run
from rtl.engine.core import SpikeEngine
from rtl.engine_plan import build_plan

MODELS = {
    # a stream-adding tokenizer, attention with two heads, both LIF kinds, head; 4 lanes
    "T2-2heads-4lanes": (dict(T=2, input_bits=3, in_channels=1, image_size=[4, 4],
                              tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}], embed_dim=8, heads=2,
                              blocks=1, mlp_hidden=16, num_classes=3, weight_bits=4), 4, 21),
    # short outputs (one lane, T = 1): the spacing rule and the layer wait at their tightest
    "T1-1lane": (dict(T=1, input_bits=2, in_channels=1, image_size=[4, 4],
                      tokenizer=[{"out": 2, "pool": False}, {"out": 4, "pool": True}], embed_dim=4, heads=2,
                      blocks=1, mlp_hidden=4, num_classes=2, weight_bits=4), 1, 22),
}


def _run_core(model, lanes, image, only_used=True):
    plan = build_plan(model, lanes)
    dut = SpikeEngine(plan)
    collisions, out = [], {}

    async def bench(ctx):
        pixels = [int(v) for v in np.asarray(image).reshape(-1)]
        for v in pixels:
            ctx.set(dut.in_valid, 1)
            ctx.set(dut.in_data, v)
            await ctx.tick()
        ctx.set(dut.in_valid, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(200_000):
            for name, (rd, wr) in dut.ram_ports.items():
                if ctx.get(wr.en) and ctx.get(rd.en) and ctx.get(rd.addr) == ctx.get(wr.addr) \
                        and (ctx.get(dut.ram_reads_used[name]) or not only_used):
                    collisions.append((name, cycle, ctx.get(wr.addr)))
            if ctx.get(dut.done):
                out["cycles"], out["class"] = ctx.get(dut.cycles), ctx.get(dut.pred_class)
                return
            await ctx.tick()
        raise AssertionError("the core did not finish within 200,000 cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return collisions, out


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_ram_row_is_read_while_it_is_written(name):
    config, lanes, seed = MODELS[name]
    model = im.random_intmodel(im.make_config(**config), seed=seed, firing=0.3)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 1 << config["input_bits"], size=(config["in_channels"], *config["image_size"]))
    collisions, out = _run_core(model, lanes, image)
    assert not collisions, f"{len(collisions)} read/write collisions; first: RAM {collisions[0][0]}, " \
                           f"cycle {collisions[0][1]}, row {collisions[0][2]}"
    # the run was a real inference: the class the golden model gives
    golden = run(model, image[None])
    assert out["class"] == int(golden.classes[0])


@pytest.mark.unit
def test_the_collision_check_sees_collisions():
    """The same run without the used-reads qualification reports the first conv's unused activation-RAM reads."""
    config, lanes, seed = MODELS["T1-1lane"]
    model = im.random_intmodel(im.make_config(**config), seed=seed, firing=0.3)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 1 << config["input_bits"], size=(config["in_channels"], *config["image_size"]))
    collisions, _ = _run_core(model, lanes, image, only_used=False)
    assert any(name == "act" for name, _, _ in collisions), collisions


@pytest.mark.unit
def test_no_collision_on_the_shipped_digits_core(tmp_path):
    """The trained digits model at 16 lanes, the default core, on its first test image."""
    import os
    from quant import zoo
    assert zoo.provide("digits", str(tmp_path))
    model = im.load(os.path.join(tmp_path, "digits", "intmodel.zip"))
    images, _ = im.load_testset(os.path.join(tmp_path, "digits", "testset.npz"))
    collisions, out = _run_core(model, 16, images[0])
    assert not collisions, f"{len(collisions)} read/write collisions; first: RAM {collisions[0][0]}, " \
                           f"cycle {collisions[0][1]}, row {collisions[0][2]}"
    assert out["class"] == int(run(model, images[:1]).classes[0])
