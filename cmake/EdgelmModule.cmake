# edgelm_module(<concern> [DEPS <targets>...])
# Builds src/<concern>/*.cpp into the static library edgelm_<concern>; public headers live in include/edgelm/.
function(edgelm_module concern)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(target edgelm_${concern})
  if(sources)
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  else()  # a concern with headers only (so far)
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  endif()
  set_property(GLOBAL APPEND PROPERTY EDGELM_MODULES ${target})
endfunction()

# edgelm_test(<concern> [DEPS <targets>...] [LABELS <labels>...])
# Builds tests/<concern>/*.cpp into one GoogleTest executable test_<concern>, registered with CTest.
function(edgelm_test concern)
  cmake_parse_arguments(ARG "" "" "DEPS;LABELS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(NOT sources)
    return()
  endif()
  set(target test_${concern})
  add_executable(${target} ${sources})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src
                                               ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${target} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${target} PRIVATE
    EDGELM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    EDGELM_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${target} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                       PROPERTIES LABELS "${concern};${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
