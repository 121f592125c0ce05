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
    mallctl mallctlbymib mallctlnametomib)
set(_zm_je_map "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.map")
set(_zm_je_keep "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.keep")
set(_zm_map_text "")
set(_zm_keep_text "")
foreach(n ${_zm_je_api})
  string(APPEND _zm_map_text "${n} zm__jep_${n}\n")
  string(APPEND _zm_keep_text "zm__jep_${n}\n")
endforeach()
file(WRITE "${_zm_je_map}" "${_zm_map_text}")
file(WRITE "${_zm_je_keep}" "${_zm_keep_text}")

set(ZM_JE_PRIVATE_OBJECT "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.o")
set(_zm_je_work "${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private")
# The C++ operators (jemalloc_cpp) stay out: they would replace the program's.
add_custom_command(OUTPUT "${ZM_JE_PRIVATE_OBJECT}"
  COMMAND ${CMAKE_COMMAND} -E rm -rf "${_zm_je_work}"
  COMMAND ${CMAKE_COMMAND} -E make_directory "${_zm_je_work}"
  COMMAND ${CMAKE_COMMAND} -E chdir "${_zm_je_work}" ${CMAKE_AR} x "${ZM_JEMALLOC_PIC_ARCHIVE}"
  COMMAND ${CMAKE_COMMAND} -E rm -f "${_zm_je_work}/jemalloc_cpp.pic.o"
  COMMAND sh -c "'${CMAKE_LINKER}' -r -o '${_zm_je_work}/all.o' '${_zm_je_work}'/*.o"
  COMMAND ${CMAKE_OBJCOPY} --redefine-syms=${_zm_je_map} "${_zm_je_work}/all.o" "${_zm_je_work}/renamed.o"
  COMMAND ${CMAKE_OBJCOPY} --keep-global-symbols=${_zm_je_keep} "${_zm_je_work}/renamed.o" "${ZM_JE_PRIVATE_OBJECT}"
  DEPENDS "${ZM_JEMALLOC_PIC_ARCHIVE}" "${PROJECT_SOURCE_DIR}/cmake/jemalloc_private.cmake"
  COMMENT "zmalloc: private jemalloc from ${ZM_JEMALLOC_PIC_ARCHIVE}"
  VERBATIM)
set_source_files_properties("${ZM_JE_PRIVATE_OBJECT}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
