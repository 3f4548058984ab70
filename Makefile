# Two commands: `make run` starts the service on embedded defaults, `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz lint typecheck bench clean translations

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(STAMP)
	$(BIN)/mobip serve

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
