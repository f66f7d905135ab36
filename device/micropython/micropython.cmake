# USER_C_MODULES for CMake-based ports (esp32, rp2) points at this file:
#   make -C ports/rp2 BOARD=RPI_PICO USER_C_MODULES=/path/to/device/micropython/micropython.cmake
# (make-based ports take the directory instead; they find mcunet/micropython.mk.)
include(${CMAKE_CURRENT_LIST_DIR}/mcunet/micropython.cmake)
