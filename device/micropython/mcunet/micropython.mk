# mcunet as a user C module, for make-based ports (unix, stm32, ...):
#   make USER_C_MODULES=/path/to/device/micropython
# py/py.mk includes this file with USERMOD_DIR set to this directory.

MCUNET_MOD_DIR := $(USERMOD_DIR)
# abspath: py/py.mk rewrites sources under USERMOD_DIR to build/mcunet/...; a path that
# still contained "../.." would put the engine's objects outside the build directory.
MCUNET_ENGINE_DIR := $(abspath $(MCUNET_MOD_DIR)/../../engine)

# Only the binding defines qstrs; the engine goes in the LIB list so it is not scanned.
SRC_USERMOD_C += $(MCUNET_MOD_DIR)/mcunet.c
SRC_USERMOD_LIB_C += $(sort $(wildcard $(MCUNET_ENGINE_DIR)/src/*.c $(MCUNET_ENGINE_DIR)/src/kernels/*.c))

CFLAGS_USERMOD += -I$(MCUNET_ENGINE_DIR)/include -I$(MCUNET_ENGINE_DIR)/src
