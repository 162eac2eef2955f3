# Helpers that give every Aloft target the same warnings and test wiring.

# Warnings are errors in CI and in developer builds (-DALOFT_WERROR=ON, as scripts/test.sh and
# the `dev` preset set it), never by default: a user's compiler may warn where ours did not.
option(ALOFT_WERROR "Treat compiler warnings in Aloft's own code as errors" OFF)
set(ALOFT_WARNINGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor)
if(ALOFT_WERROR)
  list(APPEND ALOFT_WARNINGS -Werror)
endif()
# GCC's -Wmaybe-uninitialized reports std::variant members (db::Params) as maybe uninitialized
# depending on what the optimizer inlines (GCC 12 at -O2 and above; GCC bugs 80635, 105593):
# noise that moves with every change. -Wuninitialized stays, and clang's warnings cover the rest.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND ALOFT_WARNINGS -Wno-maybe-uninitialized)
endif()

# aloft_library(NAME SOURCES ... DEPS ...): static library aloft_<NAME> with src/ on the include path.
function(aloft_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(aloft_${name} STATIC ${ARG_SOURCES})
  add_library(aloft::${name} ALIAS aloft_${name})
  target_include_directories(aloft_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(aloft_${name} PRIVATE ${ALOFT_WARNINGS})
  target_link_libraries(aloft_${name} PUBLIC ${ARG_DEPS})
endfunction()

# aloft_test(NAME SOURCES ... DEPS ... LABEL unit|integration|system): a GoogleTest binary whose
# cases are registered with CTest one by one.
function(aloft_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${ALOFT_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE ALOFT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 60)
endfunction()

include(GoogleTest)
