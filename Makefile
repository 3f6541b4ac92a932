# Two commands: `make demo` and `make test`. Each sets up a local virtual
# environment (.venv) with a CPU build of torch and skhop in editable mode.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install. On this project's machines torch==2.13.0 is a
# CPU build; elsewhere install the torch you want first, or override this.
TORCH ?= torch==2.13.0

# The numerics-heavy tests: rerun with torch's CPU kernels forced to other
# levels, since each level (and each CPU) rounds float32 sums its own way.
NUMERICS := tests/test_functional.py tests/test_core_properties.py tests/test_modules.py \
	tests/test_retriever.py tests/test_imputer.py tests/test_classifier.py tests/test_mil.py \
	tests/test_robustness.py tests/test_device.py skhop

.PHONY: demo test test-heavy test-numerics docs docs-quick lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	OMP_WAIT_POLICY=PASSIVE $(PY) examples/demo.py

# The default tier: quick tests of behaviour, lint and format.
test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q

# The second tier: tests that start other processes, and the slow ones.
test-heavy: $(VENV)/.installed
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m "heavy or slow"

# The numerics tests with torch's plain and AVX2 kernels.
test-numerics: $(VENV)/.installed
	for level in default avx2; do \
		echo "ATEN_CPU_CAPABILITY=$$level"; \
		ATEN_CPU_CAPABILITY=$$level OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q $(NUMERICS) || exit 1; \
	done

# The documentation: API reference, user guide and the example gallery
# (the gallery scripts run during the build). Warnings are errors.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,docs]"
	touch $@

docs: $(VENV)/.docs-installed
	OMP_WAIT_POLICY=PASSIVE $(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

# The same with the gallery at reduced sizes (about a minute).
docs-quick: $(VENV)/.docs-installed
	SKHOP_EXAMPLES_QUICK=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info doc/_build doc/auto_examples doc/generated doc/sg_execution_times.rst
