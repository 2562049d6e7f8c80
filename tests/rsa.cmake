# RSA/CKA tests: references computed by tests/reference/rsa_reference.py (numpy/scipy/h5py).
tv_add_fixture(rsa_reference ${THINGSVISION_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/rsa_reference.py fixture
               ${TV_TEST_DATA_DIR}/rsa)
tv_add_test(rsa_test SOURCES rsa_test.cpp COMPONENTS tv_rsa FIXTURES rsa_reference)
tv_add_test(cka_test SOURCES cka_test.cpp COMPONENTS tv_rsa FIXTURES rsa_reference)
tv_add_test(rdm_plot_test SOURCES rdm_plot_test.cpp COMPONENTS tv_rsa LIBS opencv_core opencv_imgproc opencv_imgcodecs)
