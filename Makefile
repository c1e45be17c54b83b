# The two quick-start commands: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install assets demo test lint unit bench bench-quick clean system-deps browser-deps screenshots

# WeasyPrint (the PDF letters) needs Pango and a font from the system. Install them where apt-get is
# available and we are root; elsewhere say what is missing.
# fonts-droid-fallback: names in Chinese, Japanese and Korean, which DejaVu lacks.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-droid-fallback

system-deps:
	@if ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so' && ldconfig -p | grep -q 'libharfbuzz-subset.so' && fc-list 2>/dev/null | grep -qi dejavu && fc-list 2>/dev/null | grep -qi 'droid sans fallback'; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	else \
	  echo "PDF letters need Pango and fonts: install $(SYSTEM_PACKAGES) (or your system's equivalents)"; \
	fi

$(STAMP): pyproject.toml
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

# The pages' stylesheet: the GOV.UK Design System's Sass (pinned in package-lock.json), compiled
# with the council's branding into web/static/, which the web app serves. node_modules and the
# compiled CSS are not committed. --ignore-scripts: no package runs code at install.
CSS := web/static/caseloop.css

node_modules/.package-lock.json: package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else \
	    echo "the pages' stylesheet is compiled with Node.js: install nodejs and npm"; exit 1; \
	  fi; \
	fi
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

$(CSS): node_modules/.package-lock.json web/assets/caseloop.scss
	mkdir -p web/static
	npm run --silent build

assets: $(CSS)

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`, which
# downloads a browser of its own).
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "the browser tests need Chromium: install the chromium package (they are skipped without it)"; \
	fi

install: $(STAMP) $(CSS)

# Set up, migrate the embedded SQLite database, import a synthetic borough, show what is overdue,
# print the web address and demo logins, then run the engine (worker, beat and web, embedded
# broker) until Ctrl-C. Reminder digests land in var/outbox/ as .eml files during office hours
# on working days.
demo: install
	$(BIN)/caseloop db upgrade
	$(BIN)/caseloop demo
	$(BIN)/caseloop queue overdue --limit 25
	@cat var/demo-logins.txt
	$(BIN)/caseloop run

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite. Service-backed tests use CASELOOP_TEST_POSTGRES_URL and CASELOOP_TEST_REDIS_URL
# (.ci/run sets both); without them they are skipped locally, and pytest lists what it skipped.
# Two steps. First everything but the process tests, in two processes (pytest-xdist): each test's
# databases, Redis numbers and ports are its own. Then the tests marked slow, which start caseloop's
# own workers, beats and browsers and wait on them under deadlines, one at a time: run side by
# side they would starve each other's processes of the machine's CPUs.
TEST_WORKERS ?= 2

test: lint browser-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not failure"
	$(BIN)/pytest -m "slow and not failure"
	$(BIN)/pytest -m failure

# The README's screenshots, taken by the browser tests from the demo borough.
screenshots: install browser-deps
	CASELOOP_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser/test_demo_borough.py -k screenshots

unit: install
	$(BIN)/pytest tests/unit

# The benchmark suite: one table of figures, each beside its raw baseline measured in the same
# run. It builds its own data in scratch PostgreSQL schemas and a Redis database of its own.
BENCH_POSTGRES ?= $(or $(CASELOOP_BENCH_POSTGRES_URL),postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
BENCH_REDIS    ?= $(or $(CASELOOP_BENCH_REDIS_URL),redis://127.0.0.1:6379/13)
BENCH := $(BIN)/python -m benchmarks --postgres $(BENCH_POSTGRES) --redis $(BENCH_REDIS)

bench: install
	$(BENCH)

bench-quick: install
	$(BENCH) --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache node_modules web/static
