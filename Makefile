# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO    = data/demo

.PHONY: install demo test bench clean

$(BIN)/churn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(BIN)/churn

install: $(BIN)/churn

demo: install
	$(BIN)/churn generate --accounts 5000 --months 24 --seed 7 --out $(DEMO)/raw
	$(BIN)/churn validate --data $(DEMO)/raw
	$(BIN)/churn retention --data $(DEMO)/raw --out $(DEMO)/reports/retention

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf $(VENV) data/demo mlflow.db mlartifacts
