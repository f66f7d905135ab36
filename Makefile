# Two entry points, each doing all of its own set-up on a fresh machine:
#   make demo   the main job: person and mask detection on a simulated board (mcutool demo)
#   make test   the test suite
PYTHON ?= python3
VENV ?= .venv
export MCUTOOL_MODELS ?= $(abspath ../shared/models)

.PHONY: demo test test-sanitize setup system-deps clean

# Debian packages: a C compiler for the engine's CPython extension, and the Cortex-M
# cross compiler with newlib's headers (the engine includes <string.h>; Debian ships them
# in libnewlib-arm-none-eabi, a mere recommendation of gcc-arm-none-eabi, so
# --no-install-recommends leaves them out) for the bare-metal builds the tests emulate.
# What is missing is judged by what the build uses, not by the package list, and
# installed (as root, with apt-get); otherwise a message says what to install.
HASH := \#
ARM_HAS_LIBC = $(shell echo '$(HASH)include <string.h>' | arm-none-eabi-gcc -E -x c - >/dev/null 2>&1 && echo yes)
APT_NEEDS = $(if $(shell command -v gcc),,gcc) \
            $(if $(shell command -v arm-none-eabi-gcc),,gcc-arm-none-eabi binutils-arm-none-eabi) \
            $(if $(ARM_HAS_LIBC),,libnewlib-arm-none-eabi)
system-deps:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "mcutool: installing $(strip $(APT_NEEDS))"; \
	        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(APT_NEEDS); \
	    else echo "mcutool needs: $(APT_NEEDS) (apt-get install them, or your system's equivalent)"; exit 1; fi; \
	fi

$(VENV)/.installed: pyproject.toml setup.py | system-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip "setuptools>=77"
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/mcutool demo

test: setup
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info .pytest_cache

# The C engine's tests again, with the engine built under AddressSanitizer and
# UndefinedBehaviorSanitizer (CI runs this after `make test`).
SAN_LIBS = $(shell gcc -print-file-name=libasan.so):$(shell gcc -print-file-name=libubsan.so)
test-sanitize: setup
	rm -rf build/sanitize
	MCUTOOL_SANITIZE=1 $(VENV)/bin/python setup.py -q build_ext --build-lib build/sanitize --build-temp build/sanitize-tmp
	LD_PRELOAD=$(SAN_LIBS) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	MCUTOOL_ENGINE_SO=$$(ls build/sanitize/mcutool/_engine*.so) \
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_engine.py
