# Two commands: `make run` starts the service on embedded defaults, `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz lint typecheck bench clean translations

# The set-up runs once (again when requirements.lock or pyproject.toml change); it says what it
# does, since installing the pinned dependencies takes about a minute on a first run.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || { \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
			echo "MOBIP needs Python 3.11 or newer: try e.g. 'make run PYTHON=python3.12'"; exit 1; }; \
		echo "==> Creating the virtual environment $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "==> Installing the pinned dependencies of requirements.lock into $(VENV) (about a minute the first time)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -r requirements.lock
	@echo "==> Installing MOBIP itself into $(VENV) (editable: src/ is used as it is)"
	@$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@
	@echo "==> Set-up done"

run: $(STAMP)
	@echo "==> Starting MOBIP: $(BIN)/mobip serve (settings: the MOBIP_* environment variables, README.md; Ctrl-C stops it)"
	@$(BIN)/mobip serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# schemathesis against the OpenAPI document, longer than the bounded run inside `make test`:
# FUZZ_EXAMPLES examples per operation (valid and invalid), plus the coverage phase's boundary values.
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	MOBIP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest --timeout=3600 tests/test_openapi_fuzz.py

# The gettext catalogs (docs/i18n.md): the texts of the code and templates into messages.pot,
# merged into each language's .po (new texts untranslated, changed ones fuzzy: tests/test_i18n
# fails until a translator fills them), then the .mo files the app loads (committed).
LOCALE := src/mobip/locale
translations: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -c TRANSLATORS: --project=MOBIP --width=100 \
		-o $(LOCALE)/messages.pot src/mobip
	$(BIN)/pybabel -q update -i $(LOCALE)/messages.pot -d $(LOCALE) --width=100 --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALE) --statistics

bench: $(STAMP)
	$(BIN)/python bench/parser.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
