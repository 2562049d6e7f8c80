# End-to-end tests of tv-extract / tv-merge (tests/cli/*.sh): reference features, bad inputs,
# kill + --resume, shards + tv-merge, exit codes and messages; the Slurm test (label slurm).
if(TARGET tv-extract AND TARGET tv-merge)
  set(TV_EXTRACTION_DATA ${TV_TEST_DATA_DIR}/extraction)
  tv_add_fixture(extraction_model ${THINGSVISION_PYTHON}
    ${CMAKE_CURRENT_SOURCE_DIR}/reference/extraction_reference.py export ${TV_EXTRACTION_DATA}/model)
  set(TV_CLI_ENV
    TV_EXTRACT=$<TARGET_FILE:tv-extract> TV_MERGE=$<TARGET_FILE:tv-merge>
    TV_PYTHON=${THINGSVISION_PYTHON} TV_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    TV_MODEL=${TV_EXTRACTION_DATA}/model/resnet18.pt
    TV_REFERENCE=${CMAKE_CURRENT_SOURCE_DIR}/reference/extraction_reference.py
    TV_OPENCV_DOC_DATA=/usr/share/doc/opencv-doc/examples/data)
  foreach(script extract_reference bad_input resume shard_merge usage hdf5_images zoo_extract threads)
    add_test(NAME cli_${script}
      COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/${script}_test.sh)
    set_tests_properties(cli_${script} PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model)
  endforeach()
  add_test(NAME cli_text_features
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/text_features_test.sh)
  set_tests_properties(cli_text_features PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model
                       TIMEOUT 300)
  add_test(NAME cli_onnx_extract
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/onnx_extract_test.sh)
  set_tests_properties(cli_onnx_extract PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model TIMEOUT 300)
  add_test(NAME cli_slurm COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/slurm_test.sh)
  set_tests_properties(cli_slurm PROPERTIES LABELS slurm FIXTURES_REQUIRED extraction_model
                       SKIP_RETURN_CODE 77)
endif()
