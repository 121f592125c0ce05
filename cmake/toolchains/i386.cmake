# Cross-build for 32-bit x86 with Debian's crossbuild-essential-i386 (not
# gcc-multilib, which conflicts with the arm64 cross compiler). An x86-64
# kernel runs the 32-bit programs directly. Libraries from :i386 packages.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(CMAKE_C_COMPILER i686-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER i686-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE i386-linux-gnu)
