# A private jemalloc (ZMALLOC_JEMALLOC_PRIVATE): Debian's libjemalloc_pic.a
# linked into libzmalloc itself, as one relocatable object whose API names
# carry zmalloc's internal prefix (malloc -> zm__jep_malloc) and whose other
# symbols are all local. The program keeps its own malloc; zmalloc's blocks
# alone come from this jemalloc, so jemalloc's own per-thread byte counters
# (thread.allocatedp / thread.deallocatedp) are exactly zmalloc's figure and
# the hot path does no accounting of its own (src/counter.h).
#
# Sets ZM_JE_PRIVATE_OBJECT (empty when the private copy is not built).
set(ZM_JE_PRIVATE_OBJECT "")
if(NOT ZMALLOC_JEMALLOC_PRIVATE OR ZMALLOC_SIZE_HEADER)
  return()
endif()
get_filename_component(_zm_je_dir "${ZM_jemalloc_LIBRARY}" DIRECTORY)
find_file(ZM_JEMALLOC_PIC_ARCHIVE libjemalloc_pic.a HINTS "${_zm_je_dir}" NO_DEFAULT_PATH)
find_file(ZM_JEMALLOC_PIC_ARCHIVE libjemalloc_pic.a)
if(CMAKE_SIZEOF_VOID_P LESS 8 OR NOT ZM_JEMALLOC_PIC_ARCHIVE OR NOT CMAKE_OBJCOPY OR NOT CMAKE_LINKER)
  # The counters are 64-bit words another thread reads: only where one load
  # reads one whole word.
  message(STATUS "zmalloc: jemalloc shared with the process (no libjemalloc_pic.a, objcopy or 64-bit target)")
  return()
endif()

# The API names zmalloc calls, and the private name each gets.
set(_zm_je_api malloc free mallocx rallocx sallocx sdallocx nallocx
    mallctl mallctlbymib mallctlnametomib malloc_stats_print)
set(_zm_je_map "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.map")
set(_zm_je_keep "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.keep")
set(_zm_map_text "")
set(_zm_keep_text "")
foreach(n ${_zm_je_api})
  string(APPEND _zm_map_text "${n} zm__jep_${n}\n")
  string(APPEND _zm_keep_text "zm__jep_${n}\n")
endforeach()
# Internal names (hidden already) that zmalloc's copy of jemalloc's malloc
# fast path reads (src/backends/jemalloc_fast.h): the thread's TSD and the
# size-class tables.
foreach(n tsd_tls sz_size2index_tab sz_index2size_tab)
  string(APPEND _zm_map_text "je_${n} zm__jep_${n}\n")
  string(APPEND _zm_keep_text "zm__jep_${n}\n")
endforeach()
file(WRITE "${_zm_je_map}" "${_zm_map_text}")
file(WRITE "${_zm_je_keep}" "${_zm_keep_text}")

set(ZM_JE_PRIVATE_OBJECT "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.o")
set(_zm_je_work "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private")
# Made at configure time, so that the fast-path check below can link it; a
# new archive (a package upgrade) or a change here reconfigures.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${ZM_JEMALLOC_PIC_ARCHIVE}")
file(REMOVE_RECURSE "${_zm_je_work}")
file(MAKE_DIRECTORY "${_zm_je_work}")
execute_process(COMMAND ${CMAKE_AR} x "${ZM_JEMALLOC_PIC_ARCHIVE}"
  WORKING_DIRECTORY "${_zm_je_work}" RESULT_VARIABLE _zm_rc)
# The C++ operators (jemalloc_cpp) stay out: they would replace the program's.
file(REMOVE "${_zm_je_work}/jemalloc_cpp.pic.o")
file(GLOB _zm_je_objects "${_zm_je_work}/*.o")
if(_zm_rc EQUAL 0)
  execute_process(COMMAND "${CMAKE_LINKER}" -r -o "${_zm_je_work}/all.o" ${_zm_je_objects} RESULT_VARIABLE _zm_rc)
endif()
if(_zm_rc EQUAL 0)
  execute_process(COMMAND ${CMAKE_OBJCOPY} --redefine-syms=${_zm_je_map} "${_zm_je_work}/all.o"
                          "${_zm_je_work}/renamed.o" RESULT_VARIABLE _zm_rc)
endif()
if(_zm_rc EQUAL 0)
  execute_process(COMMAND ${CMAKE_OBJCOPY} --keep-global-symbols=${_zm_je_keep} "${_zm_je_work}/renamed.o"
                          "${ZM_JE_PRIVATE_OBJECT}" RESULT_VARIABLE _zm_rc)
endif()
file(REMOVE_RECURSE "${_zm_je_work}")
if(NOT _zm_rc EQUAL 0)
  message(FATAL_ERROR "zmalloc: could not make the private jemalloc from ${ZM_JEMALLOC_PIC_ARCHIVE} "
                      "(${_zm_rc}); -DZMALLOC_JEMALLOC_PRIVATE=OFF shares the system jemalloc instead")
endif()
message(STATUS "zmalloc: private jemalloc from ${ZM_JEMALLOC_PIC_ARCHIVE}")

# zmalloc's copy of jemalloc's fast paths (src/backends/jemalloc_fast.h)
# reads jemalloc's thread data at offsets read off one build of jemalloc: it
# is compiled in only where a program linked with this very object finds,
# for every size the copy serves, that it agrees with jemalloc's own malloc
# and free. Not when cross-compiling (nothing to run the check on).
set(ZM_JE_FAST_OK FALSE)
set(_zm_jef_out "left out of this build (ZMALLOC_FAST_PATHS=OFF)")
if(ZMALLOC_FAST_PATHS AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND NOT CMAKE_CROSSCOMPILING
   AND CMAKE_SIZEOF_VOID_P EQUAL 8)
  # The release (its thread data's layout), then both forms of its rtree
  # leaves (jemalloc_fast.h), compact first.
  set(ZM_JEF_RELEASE "${major}${minor}${bugfix}")
  set(ZM_JEF_LEAF_WIDE FALSE)
  foreach(_zm_leaf compact wide)
    set(_zm_leaf_def "")
    if(_zm_leaf STREQUAL "wide")
      set(_zm_leaf_def -DZM_JEF_LEAF_WIDE=1)
    endif()
    try_run(ZM_JEF_CHECK_RAN_${_zm_leaf} ZM_JEF_CHECK_BUILT_${_zm_leaf} "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_fast_check_${_zm_leaf}"
      "${PROJECT_SOURCE_DIR}/src/backends/jemalloc_fast_check.c"
      CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${PROJECT_SOURCE_DIR}/src"
      COMPILE_DEFINITIONS -DZM_JE_PRIVATE=1 -DZM_JEF_CHECK=1 -D_GNU_SOURCE -DZM_JEF_RELEASE=${ZM_JEF_RELEASE}
        ${_zm_leaf_def}
      LINK_LIBRARIES "${ZM_JE_PRIVATE_OBJECT}" pthread ${CMAKE_DL_LIBS} m
      COMPILE_OUTPUT_VARIABLE _zm_jef_compile_out
      RUN_OUTPUT_VARIABLE _zm_jef_run)
    string(STRIP "${_zm_jef_run}" _zm_jef_run)
    if(NOT ZM_JEF_CHECK_BUILT_${_zm_leaf})
      set(_zm_jef_run "the check did not build")
    endif()
    if(_zm_leaf STREQUAL "compact")
      set(_zm_jef_out "${_zm_jef_run}")
    endif()
    if(ZM_JEF_CHECK_BUILT_${_zm_leaf} AND ZM_JEF_CHECK_RAN_${_zm_leaf} EQUAL 0)
      set(ZM_JE_FAST_OK TRUE)
      set(_zm_jef_out "${_zm_jef_run}, ${_zm_leaf} rtree leaves")
      if(_zm_leaf STREQUAL "wide")
        set(ZM_JEF_LEAF_WIDE TRUE)
      endif()
      break()
    endif()
  endforeach()
endif()
message(STATUS "zmalloc: jemalloc fast paths in zmalloc: ${ZM_JE_FAST_OK} (${_zm_jef_out})")
# The check's word, for zm_fast_paths() where the copies are not built in.
string(REGEX REPLACE "[\"\\\n]" " " ZM_JEF_BUILD_NOTE "${_zm_jef_out}")
