# Two commands: `make demo` and `make test`. Each sets up a local virtual
# environment (.venv) with a CPU build of torch and skhop in editable mode.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install. On this project's machines torch==2.13.0 is a
# CPU build; elsewhere install the torch you want first, or override this.
TORCH ?= torch==2.13.0

.PHONY: demo test docs docs-quick lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	OMP_WAIT_POLICY=PASSIVE $(PY) examples/demo.py

test: $(VENV)/.installed
	$(PY) -m ruff check .
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q

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
