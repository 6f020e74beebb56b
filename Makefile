# amortflow developer commands. `make quickstart` and `make test` are the README's Quick start.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv quickstart test docs benchmark-speed benchmark-accuracy clean

$(STAMP): setup.cfg pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	$(BIN)/python -m ipykernel install --sys-prefix --name amortflow --display-name "amortflow" > /dev/null
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/amortflow quickstart --out quickstart_output

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build quickstart_output
