# The two commands a fresh machine needs: `make demo` and `make test`.
.PHONY: demo test setup-demo setup-test wheel lint typecheck bench clean

VENV := .venv
PY := $(VENV)/bin/python

demo: setup-demo
	bash examples/drives/demo.sh

test: setup-test
	$(PY) -m pytest -q -p no:cacheprovider

setup-demo:
	bash scripts/setup.sh demo

setup-test:
	bash scripts/setup.sh test

wheel:  # dist/mizzen-VERSION-py3-none-any.whl and the sdist (README: Install)
	bash scripts/wheel.sh dist

lint:
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck:
	$(VENV)/bin/mypy

bench: setup-test
	$(PY) bench/cli_startup.py
	$(PY) bench/run_overhead.py
	$(PY) bench/volume_sync.py
	$(PY) bench/ui_runs.py
	$(PY) bench/serving.py
	$(PY) bench/dataset_contract.py
	$(PY) bench/signals.py
	$(PY) bench/release_apply.py

clean:
	rm -rf $(VENV) .tools .mizzen examples/*/.mizzen dist
