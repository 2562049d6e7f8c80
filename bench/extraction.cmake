# forward_bench: the forward-only limit of extraction (the same Model::extract calls as tv-extract on
# tensors decoded beforehand), compared by scripts/bench.sh with tv-extract end to end and PyTorch.
add_executable(forward_bench ${CMAKE_CURRENT_SOURCE_DIR}/forward_bench.cpp)
target_link_libraries(forward_bench PRIVATE thingsvision)
target_compile_options(forward_bench PRIVATE ${TV_WARNINGS})

# The whole suite in --smoke mode (under 3 minutes), into a temporary file, so it cannot rot; and
# --device cuda refused before any work on a machine without a GPU (skipped where there is one).
if(THINGSVISION_BUILD_TOOLS AND THINGSVISION_BUILD_TESTS)
  add_test(NAME bench.smoke
           COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench.sh --smoke
                   --out ${CMAKE_CURRENT_BINARY_DIR}/RESULTS.smoke.md ${PROJECT_BINARY_DIR})
  set_tests_properties(bench.smoke PROPERTIES LABELS bench TIMEOUT 1200)
  add_test(NAME bench.cuda_refused
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cuda_refused_test.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(bench.cuda_refused PROPERTIES LABELS bench SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()

# scripts/gpu-check.sh's CPU path (issue #16): on this build tree, the steps a GPU machine runs
# (fixtures, tests/cuda_test, tests/cli/cuda_test.sh, bench.sh table 1 for resnet50 and vit_b_16) with
# --device cpu on 2 images; the CUDA tests skip and the summary table must say so.
if(THINGSVISION_BUILD_TOOLS AND THINGSVISION_BUILD_TESTS)
  add_test(NAME bench.gpu_check_cpu_path
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu_check_test.sh ${PROJECT_BINARY_DIR} ${THINGSVISION_PYTHON})
  set_tests_properties(bench.gpu_check_cpu_path PROPERTIES LABELS bench TIMEOUT 1200)
endif()
