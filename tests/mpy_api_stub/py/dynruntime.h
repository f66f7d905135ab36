#include "mpstub.h"
