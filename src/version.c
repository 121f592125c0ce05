/* The library's own version, for a program to check at run time which
 * zmalloc it was loaded with (ZMALLOC_VERSION_* give the header's). */
#include "zmalloc.h"

const char *zm_version(void) { return ZMALLOC_VERSION_STRING; }
