/* The C library functions the engine calls that a native module does not get.
 *
 * A dynamic native module links against nothing but MicroPython's function table, which
 * supplies memset and memmove (memcpy is routed to memmove); libgcc comes in through
 * LINK_RUNTIME for division helpers. mcu_load uses memchr, mcu_exec memcmp and the binding
 * strlen (GCC also turns a counting loop into strlen by itself), so they live here. Only
 * the natmod build compiles this file, with -fno-builtin -fno-tree-loop-distribute-patterns
 * so that these loops do not become calls to themselves; firmware builds have a libc.
 */
#include <stddef.h>
#include <stdint.h>

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++) {
        if (*p != *q) {
            return *p - *q;
        }
    }
    return 0;
}

void *memchr(const void *s, int c, size_t n) {
    const uint8_t *p = s;
    for (; n; n--, p++) {
        if (*p == (uint8_t)c) {
            return (void *)(uintptr_t)p;
        }
    }
    return NULL;
}

size_t strlen(const char *s) {
    const char *p = s;
    while (*p) {
        p++;
    }
    return (size_t)(p - s);
}
