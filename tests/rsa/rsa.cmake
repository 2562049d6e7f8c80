# RSA/CKA tests: references computed by tests/reference/rsa_reference.py (numpy/scipy/h5py).
tv_add_fixture(rsa_reference ${THINGSVISION_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/rsa_reference.py fixture
               ${TV_TEST_DATA_DIR}/rsa)
tv_add_test(rsa_test SOURCES rsa_test.cpp COMPONENTS tv_rsa FIXTURES rsa_reference)
tv_add_test(cka_test SOURCES cka_test.cpp COMPONENTS tv_rsa FIXTURES rsa_reference)
tv_add_test(rdm_plot_test SOURCES rdm_plot_test.cpp COMPONENTS tv_rsa LIBS opencv_core opencv_imgproc opencv_imgcodecs)
# The same RDM/CKA tests on Eigen's own GEMM (std::thread tiles) instead of the run-time BLAS.
add_test(NAME rsa_eigen_gemm COMMAND rsa_test --gtest_filter=ComputeRdm.*:CorrelateRdms.*)
add_test(NAME cka_eigen_gemm COMMAND cka_test)
set_tests_properties(rsa_eigen_gemm cka_eigen_gemm PROPERTIES ENVIRONMENT THINGSVISION_BLAS=0
                     FIXTURES_REQUIRED rsa_reference LABELS unit)
# tv-rsa end to end (needs the full library; tests/cli/tv_rsa_test.sh).
if(TARGET tv-rsa)
  add_test(NAME cli_tv_rsa COMMAND env TV_RSA=$<TARGET_FILE:tv-rsa> TV_PYTHON=${THINGSVISION_PYTHON}
                                   TV_SOURCE_DIR=${PROJECT_SOURCE_DIR} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/tv_rsa_test.sh)
  set_tests_properties(cli_tv_rsa PROPERTIES LABELS cli)
endif()
