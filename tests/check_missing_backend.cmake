# Configures a scratch build for each non-libc backend with the system's
# include and library directories hidden, and checks that configure stops with
# the one line that names the Debian package to install.
set(cases "jemalloc|libjemalloc-dev" "tcmalloc|libgoogle-perftools-dev" "mimalloc|libmimalloc-dev")
foreach(case IN LISTS cases)
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 backend)
  list(GET parts 1 package)
  set(dir "${WORK}/missing-${backend}")
  file(REMOVE_RECURSE "${dir}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${dir} -DZMALLOC_BACKEND=${backend}
            "-DCMAKE_IGNORE_PATH=/usr/include;/usr/lib/x86_64-linux-gnu;/usr/lib;/lib/x86_64-linux-gnu;/lib;/usr/local/include;/usr/local/lib"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  file(REMOVE_RECURSE "${dir}")
  if(rc EQUAL 0)
    message(FATAL_ERROR "configure of ${backend} succeeded without its package")
  endif()
  if(NOT err MATCHES "\n +zmalloc: backend ${backend} needs [^\n]*: apt-get install -y ${package}\n")
    message(FATAL_ERROR "configure of ${backend} did not name ${package} on one line:\n${err}")
  endif()
  message(STATUS "${backend}: configure stops and names ${package}")
endforeach()
