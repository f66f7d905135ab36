# Two entry points, each doing all of its own set-up on a fresh machine:
#   make demo   the main job (until the demo lands: inspect a real model)
#   make test   the test suite
PYTHON ?= python3
VENV ?= .venv
export MCUTOOL_MODELS ?= $(abspath ../shared/models)

.PHONY: demo test setup clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/mcutool inspect $(MCUTOOL_MODELS)/person_detect.tflite
	$(VENV)/bin/mcutool run $(MCUTOOL_MODELS)/person_detect.tflite --input $(MCUTOOL_MODELS)/images/no_person.bmp

test: setup
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info .pytest_cache
