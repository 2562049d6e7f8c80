# decode_bench: decode + preprocess images/s per thread (compare with bench/decode_python.py).
add_executable(decode_bench ${CMAKE_CURRENT_SOURCE_DIR}/decode_bench.cpp)
target_link_libraries(decode_bench PRIVATE tv_core tv_image benchmark::benchmark Threads::Threads)
target_compile_options(decode_bench PRIVATE ${TV_WARNINGS})
target_compile_definitions(decode_bench PRIVATE
  TV_BENCH_IMAGES="/usr/share/doc/opencv-doc/examples/data")
