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

# The weekly job on a synthetic business: data → checks → model → risk list → report.
demo: install
	$(BIN)/churn generate --accounts 5000 --months 24 --seed 7 --out $(DEMO)/raw
	$(BIN)/churn validate --data $(DEMO)/raw
	$(BIN)/churn retention --data $(DEMO)/raw --out $(DEMO)/reports/retention
	$(BIN)/churn train --data $(DEMO)/raw --as-of 2024-11-01 --models-dir $(DEMO)/models
	$(BIN)/churn score --data $(DEMO)/raw --as-of 2024-11-01 --out $(DEMO)/scores
	$(BIN)/churn score --data $(DEMO)/raw --as-of 2024-12-01 --out $(DEMO)/scores
	$(BIN)/churn retention --data $(DEMO)/raw --scores $(DEMO)/scores
	@echo
	@echo "Risk list: $(DEMO)/scores/risk_list.csv"
	@echo "Report:    file://$(CURDIR)/$(DEMO)/scores/report.html"

# One worker per core; whole files go to one worker, so a module's shared fixture is built once.
test: install
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench,spark]"
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/score.py
	$(BIN)/python benchmarks/spark.py
	$(BIN)/python benchmarks/monitor.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/reasons.py

clean:
	rm -rf $(VENV) data/demo mlflow.db mlartifacts
