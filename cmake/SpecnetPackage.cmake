# CPack: `cpack -G DEB` in a build folder makes specnet_VERSION_ARCH.deb from the
# install rules (cmake/SpecnetInstall.cmake), installed under /usr. The runtime
# dependencies come from dpkg-shlibdeps (package dpkg-dev): libc6, libllvm19,
# libopenblas0 (OpenBLAS's own shlibs file names that metapackage, which brings
# one of its builds), libyaml-0-2, zlib1g, libhdf5-103-1 (the specnet command reads
# HDF5 data), and libopenmpi3 with SPECNET_MPI
# (multi-process training under mpirun). What is needed only to build against
# specnet's libraries is suggested, not required.
set(CPACK_PACKAGE_NAME specnet)
set(CPACK_PACKAGE_VENDOR "specnet developers")
set(CPACK_PACKAGE_CONTACT "specnet developers <specnet@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "declarative model-spec compiler: YAML spec to fused, JIT-compiled kernels")
set(CPACK_PACKAGE_DESCRIPTION_FILE ${PROJECT_SOURCE_DIR}/packaging/deb/description.txt)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# No Homepage field: the project has no web site yet (empty, not unset, or CPack
# takes project()'s placeholder HOMEPAGE_URL).
set(CPACK_PACKAGE_HOMEPAGE_URL "")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # specnet_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
find_program(SPECNET_DPKG_SHLIBDEPS dpkg-shlibdeps)
find_program(SPECNET_FILE file)
mark_as_advanced(SPECNET_DPKG_SHLIBDEPS SPECNET_FILE)
if(SPECNET_DPKG_SHLIBDEPS AND SPECNET_FILE)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # A shlibs file, and ldconfig run on install and removal, for libspecnet_rt.so.
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
else()
  # Without dpkg-dev and file (CPack needs both to read the binaries): what
  # dpkg-shlibdeps says on Debian 12, and an ldconfig trigger.
  message(STATUS "dpkg-shlibdeps or file not found: the .deb gets a fixed Depends list")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libc6 (>= 2.34), libllvm19, libopenblas0 | libopenblas0-pthread, libyaml-0-2, zlib1g (>= 1:1.2.6), libhdf5-103-1")
  if(SPECNET_MPI)
    string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libopenmpi3")
  endif()
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/deb/triggers)
endif()
# The built-in data sets (fashion_mnist:train, the seed spec) come from here.
# bash-completion loads share/bash-completion/completions/specnet.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist, fortunes, bash-completion")
# -dev packages: to build against the libraries; gcc, libopenblas-dev and
# zlib1g-dev are also what `specnet build` links standalone model binaries with.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
    "gcc | c-compiler, cmake, pkg-config, libopenblas-dev, zlib1g-dev, llvm-19-dev, libyaml-dev")

# `make package_source` packs the sources, not build folders or runs.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/runs/" "/bench/out/")
set(CPACK_VERBATIM_VARIABLES ON)

include(CPack)
