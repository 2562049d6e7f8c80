# Model tests: seeded torchvision models exported by Debian's torch (scripted and traced), with
# reference activations from Python forward hooks (tests/reference/export_test_models.py).
tv_add_fixture(model_data ${THINGSVISION_PYTHON}
  ${CMAKE_CURRENT_SOURCE_DIR}/reference/export_test_models.py ${TV_TEST_DATA_DIR}/model)
tv_add_test(model_test SOURCES model_test.cpp COMPONENTS tv_model FIXTURES model_data
  LIBS nlohmann_json::nlohmann_json)
