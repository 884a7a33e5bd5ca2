# What `cmake --install BUILD --prefix P` puts under P, and the pieces that only
# exist to be installed: the shared runtime, the CMake package, specnet-runtime.pc,
# the man page, bash completion. Included once from the top-level CMakeLists.txt,
# after the targets exist. docs/install.md is the user's view of this file.
#
#   bin/specnet
#   include/specnet/{runtime,compiler,yaml,version}.h
#   LIBDIR/libspecnet_rt.a, libspecnet_rt.so.SOVERSION, libspecnet_compiler.a,
#          libspecnet_aot_main.a (for `specnet build`)
#   LIBDIR/cmake/specnet/   specnetConfig.cmake (+ Version), the target files,
#                           SpecnetSpecTests.cmake
#   LIBDIR/pkgconfig/specnet-runtime.pc
#   share/man/man1/specnet.1.gz
#   share/bash-completion/completions/specnet
#   share/doc/specnet/      README, CHANGELOG, LICENSE, docs/, examples/
include(CMakePackageConfigHelpers)

set(SPECNET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/specnet)
# Before 1.0 every minor release may change the ABI.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SPECNET_SOVERSION 0.${PROJECT_VERSION_MINOR})
else()
  set(SPECNET_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

# ---------------------------------------------------------------------------
# libspecnet_rt.so: the static runtime's sources compiled again as a shared
# library, with the same include folders, definitions and dependencies, read from
# the specnet_rt target so that runtime/CMakeLists.txt stays the one list.

get_target_property(_sn_rt_sources specnet_rt SOURCES)
get_target_property(_sn_rt_dir specnet_rt SOURCE_DIR)
set(_sn_rt_shared_sources)
foreach(_src IN LISTS _sn_rt_sources)
  if(IS_ABSOLUTE "${_src}")
    list(APPEND _sn_rt_shared_sources "${_src}")
  else()
    list(APPEND _sn_rt_shared_sources "${_sn_rt_dir}/${_src}")
  endif()
endforeach()
add_library(specnet_rt_shared SHARED ${_sn_rt_shared_sources})
target_include_directories(specnet_rt_shared
  PRIVATE $<TARGET_PROPERTY:specnet_rt,INCLUDE_DIRECTORIES>
  INTERFACE $<BUILD_INTERFACE:$<TARGET_PROPERTY:specnet_rt,INTERFACE_INCLUDE_DIRECTORIES>>)
target_compile_definitions(specnet_rt_shared PRIVATE $<TARGET_PROPERTY:specnet_rt,COMPILE_DEFINITIONS>)
target_compile_options(specnet_rt_shared PRIVATE $<TARGET_PROPERTY:specnet_rt,COMPILE_OPTIONS>)
# Private: a program that links the shared runtime needs none of these itself.
target_link_libraries(specnet_rt_shared PRIVATE $<TARGET_PROPERTY:specnet_rt,LINK_LIBRARIES>)
set_target_properties(specnet_rt_shared PROPERTIES
  OUTPUT_NAME specnet_rt
  VERSION ${PROJECT_VERSION}
  SOVERSION ${SPECNET_SOVERSION})
add_library(specnet::runtime_shared ALIAS specnet_rt_shared)

set_target_properties(specnet_rt PROPERTIES EXPORT_NAME runtime)
set_target_properties(specnet_rt_shared PROPERTIES EXPORT_NAME runtime_shared)
set_target_properties(specnet_compiler PROPERTIES EXPORT_NAME compiler)
set_target_properties(specnet PROPERTIES EXPORT_NAME specnet)

# ---------------------------------------------------------------------------
# Public headers compile on their own (each first in its translation unit).

file(GLOB _sn_public_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/runtime/include/specnet/*.h
     ${PROJECT_SOURCE_DIR}/compiler/include/specnet/*.h)
set(_sn_header_checks)
foreach(_hdr IN LISTS _sn_public_headers ITEMS ${PROJECT_BINARY_DIR}/include/specnet/version.h)
  get_filename_component(_name ${_hdr} NAME_WE)
  set(_c ${PROJECT_BINARY_DIR}/header_check/${_name}.c)
  file(CONFIGURE OUTPUT ${_c} CONTENT "#include <specnet/${_name}.h>\nint sn_header_check_${_name};\n")
  list(APPEND _sn_header_checks ${_c})
endforeach()
add_library(specnet_header_check OBJECT ${_sn_header_checks})
# Only the folders that get installed: a header reaching into compiler/ or an LLVM
# header would fail here.
target_include_directories(specnet_header_check PRIVATE ${PROJECT_SOURCE_DIR}/runtime/include
  ${PROJECT_SOURCE_DIR}/compiler/include ${PROJECT_BINARY_DIR}/include)
target_compile_options(specnet_header_check PRIVATE -Wpedantic)

# ---------------------------------------------------------------------------
# Targets, three export sets so that the package config can offer each part when
# its own dependencies are there: the command needs nothing to be run, the runtime
# needs OpenBLAS and zlib to link, the compiler LLVM 19 and libyaml.

install(TARGETS specnet EXPORT specnet-tool
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS specnet_rt specnet_rt_shared EXPORT specnet-runtime
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The main() of standalone model binaries: the installed `specnet build` finds it
# (and libspecnet_rt.a) in LIBDIR, beside the command's ../lib.
if(TARGET specnet_aot_main)
  set_target_properties(specnet_aot_main PROPERTIES EXPORT_NAME aot_main)
  install(TARGETS specnet_aot_main EXPORT specnet-runtime ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
if(TARGET specnet_aot_train_main)
  set_target_properties(specnet_aot_train_main PROPERTIES EXPORT_NAME aot_train_main)
  install(TARGETS specnet_aot_train_main EXPORT specnet-runtime ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(TARGETS specnet_compiler EXPORT specnet-compiler
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(DIRECTORY runtime/include/ compiler/include/ ${PROJECT_BINARY_DIR}/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

install(EXPORT specnet-tool NAMESPACE specnet:: FILE specnetToolTargets.cmake
  DESTINATION ${SPECNET_CMAKE_DIR})
install(EXPORT specnet-runtime NAMESPACE specnet:: FILE specnetRuntimeTargets.cmake
  DESTINATION ${SPECNET_CMAKE_DIR})
install(EXPORT specnet-compiler NAMESPACE specnet:: FILE specnetCompilerTargets.cmake
  DESTINATION ${SPECNET_CMAKE_DIR})

# ---------------------------------------------------------------------------
# The CMake package: find_package(specnet [VERSION] [COMPONENTS runtime compiler]).

configure_package_config_file(cmake/specnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/package/specnetConfig.cmake
  INSTALL_DESTINATION ${SPECNET_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: only the same minor version is compatible (see SPECNET_SOVERSION).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/specnetConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/package/specnetConfig.cmake
  ${PROJECT_BINARY_DIR}/package/specnetConfigVersion.cmake
  cmake/SpecnetSpecTests.cmake
  DESTINATION ${SPECNET_CMAKE_DIR})

# ---------------------------------------------------------------------------
# specnet-runtime.pc. The prefix is only known at install time (cmake --install
# --prefix P, or /usr inside the .deb), so the file is written then.

set(SPECNET_PC_PREFIX "@SPECNET_PC_PREFIX@") # kept for the install-time pass
configure_file(packaging/specnet-runtime.pc.in ${PROJECT_BINARY_DIR}/package/specnet-runtime.pc.in @ONLY)
install(CODE "
  set(SPECNET_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/package/specnet-runtime.pc.in\"
                 \"${PROJECT_BINARY_DIR}/package/specnet-runtime.pc\" @ONLY)")
install(FILES ${PROJECT_BINARY_DIR}/package/specnet-runtime.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---------------------------------------------------------------------------
# Man page (gzipped, as Debian wants it), bash completion, documentation.

string(TIMESTAMP SPECNET_MAN_DATE "%Y-%m-%d" UTC) # honours SOURCE_DATE_EPOCH
configure_file(packaging/specnet.1.in ${PROJECT_BINARY_DIR}/package/specnet.1 @ONLY)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/package/specnet.1.gz
  COMMAND gzip -9n -c ${PROJECT_BINARY_DIR}/package/specnet.1 > ${PROJECT_BINARY_DIR}/package/specnet.1.gz
  DEPENDS ${PROJECT_BINARY_DIR}/package/specnet.1
  COMMENT "Compressing the man page")
add_custom_target(specnet_man ALL DEPENDS ${PROJECT_BINARY_DIR}/package/specnet.1.gz)
install(FILES ${PROJECT_BINARY_DIR}/package/specnet.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

install(FILES packaging/specnet.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions RENAME specnet)

install(FILES README.md CHANGELOG.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
# The example specs with the small data files they name (paths relative to the spec).
install(DIRECTORY specs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/specs
  FILES_MATCHING PATTERN "*.yaml" PATTERN "*.csv" PATTERN "*.npy")
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
  FILES_MATCHING PATTERN "*.c" PATTERN "*.h" PATTERN "*.yaml" PATTERN "*.md"
                 PATTERN "CMakeLists.txt" PATTERN "*.cmake"
  REGEX "/build[^/]*$" EXCLUDE)

# ---------------------------------------------------------------------------
# The help, the man page and the completion name the same commands and options.

add_test(NAME cli_help
  COMMAND bash ${PROJECT_SOURCE_DIR}/packaging/check_help.sh $<TARGET_FILE:specnet>
          ${PROJECT_BINARY_DIR}/package/specnet.1 ${PROJECT_SOURCE_DIR}/packaging/specnet.bash-completion
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
