# rsa_bench: compute_rdm / Spearman / linear CKA against numpy+scipy (bench/rsa_numpy.py), same data.
add_executable(rsa_bench ${CMAKE_CURRENT_SOURCE_DIR}/rsa_bench.cpp)
target_link_libraries(rsa_bench PRIVATE tv_core tv_rsa Threads::Threads)
target_compile_options(rsa_bench PRIVATE ${TV_WARNINGS})
target_compile_definitions(rsa_bench PRIVATE TV_PYTHON="${THINGSVISION_PYTHON}"
                           TV_BENCH_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
