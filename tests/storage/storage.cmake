# Storage component tests: writers, readers, merge; Python/Octave references in tests/reference/.
tv_add_fixture(storage_files ${THINGSVISION_PYTHON}
  ${PROJECT_SOURCE_DIR}/tests/reference/storage_make.py ${TV_TEST_DATA_DIR}/storage)
tv_add_test(feature_writer_test SOURCES feature_writer_test.cpp COMPONENTS tv_storage)
tv_add_test(feature_reader_test SOURCES feature_reader_test.cpp COMPONENTS tv_storage
  FIXTURES storage_files)
