# specnet_add_spec_tests(DIR [SPECNET EXECUTABLE] [LABELS l...] [PREFIX P]
#                        [ENVIRONMENT VAR=VALUE...])
#
# Registers every *.yaml spec under DIR (recursively) as one CTest test that runs
# `specnet test SPEC`: the spec's expect: block decides pass or fail (metric bounds,
# gradcheck, or an expected error). Test names are "spec:" and the path relative to
# DIR. SPECNET defaults to specnet::specnet: in specnet's own build an alias of the
# specnet target, in a project that did find_package(specnet) the installed
# executable (the package also sets SPECNET_EXECUTABLE, used when the target is not
# there). PREFIX replaces "spec:" in the names; ENVIRONMENT is added to each test's
# (for example SPECNET_CPU=x86-64-v3 to run the suite again for the AVX2 target).
function(specnet_add_spec_tests dir)
  cmake_parse_arguments(ARG "" "SPECNET;PREFIX" "LABELS;ENVIRONMENT" ${ARGN})
  if(NOT ARG_PREFIX)
    set(ARG_PREFIX "spec:")
  endif()
  if(NOT ARG_SPECNET)
    if(TARGET specnet::specnet)
      set(ARG_SPECNET $<TARGET_FILE:specnet::specnet>)
    elseif(SPECNET_EXECUTABLE)
      set(ARG_SPECNET ${SPECNET_EXECUTABLE})
    else()
      message(FATAL_ERROR "specnet_add_spec_tests: no specnet executable; "
                          "find_package(specnet) first, or pass SPECNET")
    endif()
  endif()
  get_filename_component(dir "${dir}" ABSOLUTE)
  file(GLOB_RECURSE specs CONFIGURE_DEPENDS "${dir}/*.yaml" "${dir}/*.yml")
  list(SORT specs)
  foreach(spec IN LISTS specs)
    file(RELATIVE_PATH rel "${dir}" "${spec}")
    add_test(NAME "${ARG_PREFIX}${rel}" COMMAND ${ARG_SPECNET} test "${spec}")
    set_tests_properties("${ARG_PREFIX}${rel}" PROPERTIES LABELS "spec;${ARG_LABELS}"
                         ENVIRONMENT "OPENBLAS_NUM_THREADS=1;${ARG_ENVIRONMENT}")
  endforeach()
endfunction()
