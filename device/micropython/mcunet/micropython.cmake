# mcunet as a user C module, for CMake-based ports (esp32, rp2). Included from
# ../micropython.cmake, which is what USER_C_MODULES names.

get_filename_component(MCUNET_ENGINE_DIR ${CMAKE_CURRENT_LIST_DIR}/../../engine ABSOLUTE)
file(GLOB MCUNET_ENGINE_SRC
    ${MCUNET_ENGINE_DIR}/src/*.c
    ${MCUNET_ENGINE_DIR}/src/kernels/*.c
)

add_library(usermod_mcunet INTERFACE)

target_sources(usermod_mcunet INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mcunet.c
    ${MCUNET_ENGINE_SRC}
)

target_include_directories(usermod_mcunet INTERFACE
    ${MCUNET_ENGINE_DIR}/include
    ${MCUNET_ENGINE_DIR}/src
)

target_link_libraries(usermod INTERFACE usermod_mcunet)
