# Storage benchmark: write throughput of each FeatureWriter backend and RSS while writing;
# bench/writer_bench.sh compares it with dd's raw disk speed.
add_executable(writer_bench ${CMAKE_CURRENT_SOURCE_DIR}/writer_bench.cpp)
target_compile_options(writer_bench PRIVATE ${TV_WARNINGS})
target_link_libraries(writer_bench PRIVATE tv_core tv_storage)
