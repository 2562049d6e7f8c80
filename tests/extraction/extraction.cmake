# tv_extraction: escaping, shards, module selection, projection, manifests (unit tests; the end-to-end
# job is tested through tv-extract in tests/cli/cli.cmake).
tv_add_fixture(extraction_projection ${THINGSVISION_PYTHON}
  ${CMAKE_CURRENT_SOURCE_DIR}/reference/extraction_reference.py projection ${TV_TEST_DATA_DIR}/extraction)
tv_add_test(extraction_test SOURCES extraction_test.cpp
  COMPONENTS tv_extraction tv_image tv_storage tv_model tv_text FIXTURES extraction_projection)
