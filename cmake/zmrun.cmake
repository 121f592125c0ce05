# zmrun and its preload libraries: libzmalloc-preload-<backend>.so for every
# backend whose library is installed here, whichever one ZMALLOC_BACKEND
# chose for libzmalloc. glibc only (the libc one reaches glibc's malloc by
# its __libc_* names), and not under sanitizers (they bring their own malloc).
set(ZM_PRELOAD_SOURCES
  src/counter_registry.c
  src/counter_wrapper.c
  src/fast_path.c
  src/os_elf.c
  src/os_linux.c
  src/os_memory.c
  src/os_rss.c
  src/os_smaps.c
  src/preload/interpose.c
  src/preload/lifecycle.c
  src/preload/report.c
  src/preload/sampler.c
  src/preload/stats.c)
set(ZM_PRELOAD_DIR ${CMAKE_BINARY_DIR}/preload)
set(ZM_PRELOAD_BACKENDS "")

function(zm_preload backend header lib)
  set(incs "")
  set(libs "")
  if(lib)
    find_path(ZM_PRELOAD_${lib}_INCLUDE ${header})
    find_library(ZM_PRELOAD_${lib}_LIBRARY ${lib})
    if(NOT ZM_PRELOAD_${lib}_INCLUDE OR NOT ZM_PRELOAD_${lib}_LIBRARY)
      message(STATUS "zmrun: no ${backend} preload library (${header} or lib${lib} not found)")
      return()
    endif()
    set(incs ${ZM_PRELOAD_${lib}_INCLUDE})
    set(libs ${ZM_PRELOAD_${lib}_LIBRARY})
  endif()
  set(t zmalloc-preload-${backend})
  set(extra "")
  if(backend STREQUAL "libc")
    set(extra src/backends/glibc_chunks.c src/backends/glibc_tcache.c)
  elseif(backend STREQUAL "tcmalloc")
    set(extra src/backends/tcmalloc_fast.c src/backends/tcmalloc_sizes.c)
  elseif(backend STREQUAL "mimalloc")
    zm_header_define(${incs}/mimalloc.h MI_MALLOC_VERSION mi_v)
    if(mi_v GREATER_EQUAL 300)
      set(extra src/backends/mimalloc3.c src/backends/mimalloc_probe.c)
    else()
      set(extra src/backends/mimalloc2.c src/backends/mimalloc_probe.c)
    endif()
  endif()
  add_library(${t} SHARED ${ZM_PRELOAD_SOURCES} src/backends/${backend}.c ${extra})
  target_include_directories(${t} PRIVATE src include ${CMAKE_CURRENT_BINARY_DIR}/include ${incs})
  # The wrapper counts; each slot has room for the statistics (preload/stats.h
  # checks the size).
  target_compile_definitions(${t} PRIVATE _GNU_SOURCE ZM_PRELOAD=1 ZM_PRELOAD_BACKEND="${backend}"
    "ZM_COUNTER_HEADER=\"counter_wrapper.h\"" ZM_SLOT_EXT_BYTES=640
    "ZM_BACKEND_HEADER=\"backends/${backend}.h\"" $<$<NOT:$<BOOL:${ZMALLOC_FAST_PATHS}>>:ZM_NO_FAST_PATHS=1>)
  target_compile_options(${t} PRIVATE -fno-plt)
  # Only the C library's names leave the library: its zm_* functions must not
  # meet a libzmalloc the program itself links.
  # interpose.c's zm__pl_NAME functions take the C library's names here.
  set(names malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc
    pvalloc malloc_usable_size)
  list(TRANSFORM names REPLACE "(.+)" "-Wl,--defsym=\\1=zm__pl_\\1")
  target_link_options(${t} PRIVATE -Wl,--version-script=${PROJECT_SOURCE_DIR}/src/preload/exports.map
    -Wl,-z,now ${names})
  target_link_libraries(${t} PRIVATE ${libs} Threads::Threads ${CMAKE_DL_LIBS})
  set_target_properties(${t} PROPERTIES C_VISIBILITY_PRESET hidden PREFIX lib
    LIBRARY_OUTPUT_DIRECTORY ${ZM_PRELOAD_DIR})
  install(TARGETS ${t} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/zmalloc COMPONENT zmrun)
  set(ZM_PRELOAD_BACKENDS ${ZM_PRELOAD_BACKENDS} ${backend} PARENT_SCOPE)
endfunction()

zm_preload(libc "" "")
zm_preload(jemalloc jemalloc/jemalloc.h jemalloc)
zm_preload(tcmalloc gperftools/tcmalloc.h tcmalloc_minimal)
zm_preload(mimalloc mimalloc.h mimalloc)
message(STATUS "zmrun: preload libraries for ${ZM_PRELOAD_BACKENDS}")

file(RELATIVE_PATH ZM_REL_LIBDIR ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR}/zmalloc)
add_executable(zmrun tools/zmrun/zmrun.c tools/zmrun/program.c tools/zmrun/compare.c tools/zmrun/svg.c)
target_compile_definitions(zmrun PRIVATE _GNU_SOURCE ZMRUN_REL_LIBDIR="${ZM_REL_LIBDIR}"
  ZMRUN_VERSION="${PROJECT_VERSION}")
install(TARGETS zmrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT zmrun)
install(FILES tools/zmrun/zmrun.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT zmrun)
