# forward_bench: the forward-only limit of extraction (Model::extract / Model::forward on tensors
# already in memory), compared by scripts/bench.sh with tv-extract end to end and PyTorch.
add_executable(forward_bench ${CMAKE_CURRENT_SOURCE_DIR}/forward_bench.cpp)
target_link_libraries(forward_bench PRIVATE thingsvision)
target_compile_options(forward_bench PRIVATE ${TV_WARNINGS})

# The whole suite in --smoke mode (about 2-3 minutes), into a temporary file, so it cannot rot.
if(THINGSVISION_BUILD_TOOLS AND THINGSVISION_BUILD_TESTS)
  add_test(NAME bench.smoke
           COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench.sh --smoke
                   --out ${CMAKE_CURRENT_BINARY_DIR}/RESULTS.smoke.md ${PROJECT_BINARY_DIR})
  set_tests_properties(bench.smoke PROPERTIES LABELS bench TIMEOUT 1200)
endif()
