# Install rules, pkg-config files, the CMake package (find_package(zmalloc))
# and the Debian packages (cpack -G DEB). Included from the top-level
# CMakeLists.txt once the two library targets exist.
#
# Components: "runtime" holds the shared library (libzmalloc.so.<major>),
# "dev" everything needed to build against it (headers, the libzmalloc.so
# link, the archive, pkg-config and CMake files). Every install() rule needs
# one of the two: a file in no component is in neither Debian package
# (scripts/check-deb.sh fails on it).

# Inside another project (add_subdirectory, FetchContent) zmalloc installs
# nothing unless asked: set ZMALLOC_INSTALL=ON where the parent installs a
# program linked to zmalloc::zmalloc and ships libzmalloc.so with it.
option(ZMALLOC_INSTALL "Install rules for the libraries, headers, pkg-config and CMake package files"
       ${ZM_TOP_LEVEL})

# Relocatable: the prefix is found from where the .pc file lies.
file(RELATIVE_PATH ZM_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
string(JOIN " " ZM_PC_LIBS_PRIVATE ${ZM_BACKEND_PC_LIBS} -pthread)
# zmalloc.pc links the shared library (--static adds the backend for a fully
# static link); zmalloc-static.pc names the archive itself, since pkg-config
# --static alone still lets the linker pick libzmalloc.so.
foreach(pc zmalloc zmalloc-static)
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
endforeach()

# The backend, as zmallocConfig.cmake finds it again on the user's machine
# (the path found here is only a hint there), and its Debian -dev package.
set(ZM_BACKEND_LIB_NAME "")
set(ZM_BACKEND_LIB_DIR "")
if(ZM_BACKEND_LIBS)
  string(REGEX REPLACE "^-l" "" ZM_BACKEND_LIB_NAME "${ZM_BACKEND_PC_LIBS}")
  get_filename_component(ZM_BACKEND_LIB_DIR "${ZM_BACKEND_LIBS}" DIRECTORY)
endif()
set(ZM_BACKEND_DEB_DEV_libc "libc6-dev | libc-dev")
set(ZM_BACKEND_DEB_DEV_jemalloc "libjemalloc-dev")
set(ZM_BACKEND_DEB_DEV_tcmalloc "libgoogle-perftools-dev")
set(ZM_BACKEND_DEB_DEV_mimalloc "libmimalloc-dev")
set(ZM_BACKEND_DEB_DEV "${ZM_BACKEND_DEB_DEV_${ZMALLOC_BACKEND}}")
if(ZM_JE_PRIVATE_OBJECT)
  set(ZM_BACKEND_DEB_DEV "${ZM_BACKEND_DEB_DEV_libc}") # jemalloc is inside libzmalloc
endif()

if(NOT ZMALLOC_INSTALL)
  return()
endif()

set(ZM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/zmalloc)

install(TARGETS zmalloc_shared EXPORT zmallocTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS zmalloc_static EXPORT zmallocTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
# The private jemalloc is BSD-2-Clause: its notice goes with the binary.
if(ZM_JE_PRIVATE_OBJECT)
  find_file(ZM_JEMALLOC_COPYRIGHT copyright PATHS /usr/share/doc/libjemalloc2 /usr/share/doc/libjemalloc-dev
    NO_DEFAULT_PATH)
  if(ZM_JEMALLOC_COPYRIGHT)
    install(FILES ${ZM_JEMALLOC_COPYRIGHT} DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME jemalloc-copyright
      COMPONENT runtime)
  endif()
endif()
install(FILES include/zmalloc.h include/zmalloc.hpp ${CMAKE_CURRENT_BINARY_DIR}/include/zmalloc_config.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
# zmalloc(3), zmalloc_used_memory(3), zmalloc_get_rss(3) and a link page per
# public name (man/make-links.sh derives them from the header).
install(DIRECTORY man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev
  FILES_MATCHING PATTERN "*.3")
foreach(pc zmalloc zmalloc-static)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    COMPONENT dev)
endforeach()

# find_package(zmalloc 1 CONFIG) -> zmalloc::zmalloc (shared) and
# zmalloc::zmalloc_static. Every path in these files is relative to where
# they lie, so the installed tree may be moved.
include(CMakePackageConfigHelpers)
install(EXPORT zmallocTargets NAMESPACE zmalloc:: DESTINATION ${ZM_CMAKE_DIR}
  FILE zmallocTargets.cmake COMPONENT dev)
configure_package_config_file(cmake/zmallocConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/zmallocConfig.cmake INSTALL_DESTINATION ${ZM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/zmallocConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/zmallocConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/zmallocConfigVersion.cmake
  DESTINATION ${ZM_CMAKE_DIR} COMPONENT dev)

# Debian packages: cpack -G DEB in the build directory (scripts/check-deb.sh).
# Only for zmalloc's own build: CPack's settings are global to a project.
if(NOT ZM_TOP_LEVEL)
  return()
endif()
set(CPACK_PACKAGE_NAME zmalloc)
set(CPACK_PACKAGE_VENDOR zmalloc)
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "zmalloc maintainers <zmalloc@localhost>")
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL runtime dev)
if(ZMALLOC_BUILD_ZMRUN)
  list(APPEND CPACK_COMPONENTS_ALL zmrun)
endif()
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON) # dev depends on runtime (= version)
# runtime: libc6, the backend's library package, found by dpkg-shlibdeps;
# a shlibs file and the ldconfig trigger for the library.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libzmalloc${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Each description's first line is its package's synopsis (no
# CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack would put that first in both).
set(ZM_DEB_ABOUT "zmalloc wraps the heap allocator and knows at every instant how many bytes of heap its program holds. This build is on ${ZM_LIB_STRING}.")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "heap allocation wrapper with exact used-memory accounting
${ZM_DEB_ABOUT}
This package holds the shared library.")
# dev: a static link or the CMake package needs the backend's own -dev.
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libzmalloc-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${ZM_BACKEND_DEB_DEV}")
set(CPACK_DEBIAN_DEV_DESCRIPTION "heap allocation wrapper with exact used-memory accounting - development files
${ZM_DEB_ABOUT}
This package holds the headers, the static library, the pkg-config files (zmalloc, zmalloc-static) and the CMake package (find_package(zmalloc): zmalloc::zmalloc, zmalloc::zmalloc_static).")
# zmrun: the program, its man page and the preload libraries (each linked to
# its allocator's runtime package, found by dpkg-shlibdeps).
set(CPACK_DEBIAN_ZMRUN_PACKAGE_NAME zmrun)
set(CPACK_DEBIAN_ZMRUN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_ZMRUN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ZMRUN_DESCRIPTION "exact heap accounting for any program, without recompiling it
zmrun runs a dynamically linked program with zmalloc in front of its malloc (a preload library per allocator: glibc, jemalloc, tcmalloc, mimalloc) and reports its exact heap: peak, final, slack, calls, sizes, RSS and fragmentation, a time series and chart, allocation limits and failure injection, and a side-by-side comparison of the allocators on that program.")
include(CPack)
cpack_add_component(runtime DISPLAY_NAME "zmalloc shared library")
cpack_add_component(dev DISPLAY_NAME "zmalloc development files" DEPENDS runtime)
if(ZMALLOC_BUILD_ZMRUN)
  cpack_add_component(zmrun DISPLAY_NAME "zmrun")
endif()
