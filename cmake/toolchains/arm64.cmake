# Cross-build for arm64 with Debian's crossbuild-essential-arm64; tests run
# under qemu-user (ctest uses CMAKE_CROSSCOMPILING_EMULATOR). Libraries come
# from Debian's multiarch :arm64 packages (libcmocka-dev:arm64, ...).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR env ZMALLOC_UNDER_EMULATOR=qemu qemu-aarch64)
