#include "mpstub.h"
#define MP_ENOENT (2)
#define MP_EIO (5)
#define MP_ENODEV (19)
