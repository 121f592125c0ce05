/* jemalloc's API as the tests call it: the private copy inside libzmalloc
 * (its names renamed, src/backends/jemalloc_names.h) or the system one. */
#ifndef ZT_JEMALLOC_H
#define ZT_JEMALLOC_H
#ifdef ZM_JE_PRIVATE
#include "backends/jemalloc_names.h"
#else
#include <jemalloc/jemalloc.h>
#endif
#endif
