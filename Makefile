# The two commands a newcomer needs. Each creates .venv when missing and installs the package.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(PY) -m pip install -q torch torchvision
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/me-vqa demo

# One worker per core; a test file stays on one worker, so its module fixtures run once.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n auto --dist loadfile
