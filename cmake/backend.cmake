# Chooses the backend: exactly one src/backends/<name>.c (cold calls) and its
# <name>.h (inlined hot path) are compiled in. The size-header wrapper sits on
# top of whichever one is chosen.
set(ZM_BACKEND_INCLUDES "")
set(ZM_BACKEND_LIBS "")
set(ZM_BACKEND_PC_LIBS "")
set(ZM_BACKEND_DEFINES "")
set(HAVE_DEFRAG OFF)

if(ZMALLOC_BACKEND STREQUAL "libc")
  set(ZM_LIB_STRING "libc")
else()
  message(FATAL_ERROR "zmalloc: unknown ZMALLOC_BACKEND '${ZMALLOC_BACKEND}' (libc, jemalloc, tcmalloc or mimalloc)")
endif()

set(ZM_BACKEND_SOURCES src/backends/${ZMALLOC_BACKEND}.c)
list(APPEND ZM_BACKEND_DEFINES "ZM_BACKEND_HEADER=\"backends/${ZMALLOC_BACKEND}.h\"")
if(ZMALLOC_SIZE_HEADER)
  list(APPEND ZM_BACKEND_DEFINES ZM_SIZE_HEADER=1)
  set(HAVE_MALLOC_SIZE OFF)
else()
  set(HAVE_MALLOC_SIZE ON)
endif()
