# Two commands do all the set-up: `make test` and `make demo` each build .venv if it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch is installed first and pinned, so that pip never pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: test test-fast demo install clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev]" "$(TORCH_PIN)"
	touch $@

install: $(VENV)/.installed

# Every test, the `slow` ones included (measured on a busy 2-core machine: the slow tests take about
# 3 minutes of CPU, the whole suite stays well under 10 minutes); `make test-fast` leaves them out.
test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(VENV)/bin/plastic-rl demo

clean:
	rm -rf $(VENV) runs/demo
