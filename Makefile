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

# Every test that runs the C engine, again with the engine built under AddressSanitizer and
# UndefinedBehaviorSanitizer (CI runs this after `make test`): in process, or through an
# `mcutool` subprocess (LD_PRELOAD and MCUTOOL_ENGINE_SO carry over to it); the kernels
# through ctypes (MCU_KERNEL_CFLAGS); and a seeded slice of the image fuzzer
# (tests/imagefuzz.py). PYTHONMALLOC=malloc: Python's own allocator would hide buffers
# under 512 bytes (small arenas and images) from ASan. Of test_quantize and test_cli only
# the tests that reach the engine; test_link without its 1,000 line faults (48 s under
# ASan, the same few inferences again). Left out: test_install (the wheel must run its own
# engine), test_device_app (a stand-in engine under MicroPython), test_micropython_module
# (compiles only), and test_cortex_m but for its host-engine check (the engine runs emulated).
# `make fuzz-images` is the long fuzz run: FUZZ_IMAGES images of seed FUZZ_SEED.
SAN_LIBS = $(shell gcc -print-file-name=libasan.so):$(shell gcc -print-file-name=libubsan.so)
SAN_ENV = LD_PRELOAD=$(SAN_LIBS) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PYTHONMALLOC=malloc \
	MCU_KERNEL_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -g" \
	MCUTOOL_ENGINE_SO=$$(ls build/sanitize/mcutool/_engine*.so)
SANITIZE_TESTS = tests/test_engine.py tests/test_image_fuzz.py tests/test_image_contract.py tests/test_kernels_c.py \
	tests/test_detector_graph.py \
	tests/test_link.py --deselect tests/test_link.py::test_injected_faults_never_give_a_wrong_result \
	tests/test_demo.py tests/test_flash.py tests/test_cortex_m.py::test_corrupt_images_refused_in_emulation \
	tests/test_quantize.py::test_vww_bit_exact_in_litert_tflm_and_our_engines \
	tests/test_quantize.py::test_cli_quantize_report_and_convert \
	tests/test_cli.py::test_convert_then_run_image tests/test_cli.py::test_convert_budget \
	tests/test_cli.py::test_verify_json tests/test_cli.py::test_corrupt_image \
	tests/test_cli.py::test_bench_engine_native_m0plus_bit_exact
FUZZ_IMAGES ?= 100000
FUZZ_SEED ?= 1
.PHONY: sanitize-build fuzz-images
sanitize-build: setup
	rm -rf build/sanitize
	MCUTOOL_SANITIZE=1 $(VENV)/bin/python setup.py -q build_ext --build-lib build/sanitize --build-temp build/sanitize-tmp
test-sanitize: sanitize-build
	$(SAN_ENV) $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(SANITIZE_TESTS)
fuzz-images: sanitize-build
	$(SAN_ENV) $(VENV)/bin/python tests/imagefuzz.py --images $(FUZZ_IMAGES) --seed $(FUZZ_SEED)
