# End-to-end tests of tv-extract / tv-merge (tests/cli/*.sh): reference features, bad inputs,
# kill + --resume, shards + tv-merge, exit codes and messages; the Slurm test (label slurm).
if(TARGET tv-extract AND TARGET tv-merge)
  set(TV_EXTRACTION_DATA ${TV_TEST_DATA_DIR}/extraction)
  tv_add_fixture(extraction_model ${THINGSVISION_PYTHON}
    ${CMAKE_CURRENT_SOURCE_DIR}/reference/extraction_reference.py export ${TV_EXTRACTION_DATA}/model)
  set(TV_CLI_ENV
    TV_EXTRACT=$<TARGET_FILE:tv-extract> TV_EXTRACT_MAIN=$<TARGET_FILE:tv-extract-main> TV_MERGE=$<TARGET_FILE:tv-merge>
    TV_PYTHON=${THINGSVISION_PYTHON} TV_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    TV_MODEL=${TV_EXTRACTION_DATA}/model/resnet18.pt
    TV_REFERENCE=${CMAKE_CURRENT_SOURCE_DIR}/reference/extraction_reference.py
    TV_OPENCV_DOC_DATA=/usr/share/doc/opencv-doc/examples/data)
  foreach(script extract_reference bad_input resume shard_merge usage hdf5_images zoo_extract threads
                 version_skew)
    add_test(NAME cli_${script}
      COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/${script}_test.sh)
    set_tests_properties(cli_${script} PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model)
  endforeach()
  # scripts/export_all.sh (the zoo's scheduled sweep) on four names: logging, failures, timeout, resume.
  add_test(NAME cli_export_all
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/export_all_test.sh)
  set_tests_properties(cli_export_all PROPERTIES LABELS cli TIMEOUT 300)
  add_test(NAME cli_text_features
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/text_features_test.sh)
  set_tests_properties(cli_text_features PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model
                       TIMEOUT 300)
  # OpenAI's nine CLIP archives (stand-ins shaped like them, no sidecar): image, module and text
  # features against the eager model with clip.py's preprocessing (tests/cli/clip_archives_test.sh).
  add_test(NAME cli_clip_archives
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/clip_archives_test.sh)
  set_tests_properties(cli_clip_archives PROPERTIES LABELS cli TIMEOUT 900)
  add_test(NAME cli_onnx_extract
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/onnx_extract_test.sh)
  set_tests_properties(cli_onnx_extract PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model TIMEOUT 300)
  # Plain torch.onnx.export files (default settings, Identity nodes left in) made by this platform's
  # torch inside the test: features equal to the TorchScript file's.
  add_test(NAME cli_onnx_plain_export
    COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/onnx_plain_export_test.sh)
  set_tests_properties(cli_onnx_plain_export PROPERTIES LABELS cli TIMEOUT 600)
  # Archives saved by this platform's torch (plain torch.jit.save, scripted and traced), every
  # tv-extract default, taps inside attention blocks; the ViT run also checks stop signals.
  foreach(spec
      "vit_b_16|encoder.layers.encoder_layer_0.self_attention,encoder.layers.encoder_layer_5.ln_1,encoder.layers.encoder_layer_11.mlp,encoder.ln,heads|--signal"
      "swin_t|features.1.0.attn,features.3.1.mlp,norm,head|"
      "convnext_tiny|features.1.0.block,features.5.2,avgpool,classifier|"
      "efficientnet_b0|features.2.0.block,features.8,avgpool,classifier|"
      "regnet_y_400mf|trunk_output.block2.block2-1.f,trunk_output.block4,avgpool,fc|"
      # module sets that never finished under LibTorch 2.6 before the fuser was switched off
      "resnet18|conv1,layer1.0.relu,layer4.0,layer4.1.relu,avgpool,fc|--sets=fc:layer4.0,fc"
      "mobilenet_v3_small|features.1,classifier.1|")
    string(REPLACE "|" ";" parts "${spec}")
    list(GET parts 0 arch)
    list(GET parts 1 modules)
    list(GET parts 2 flag)
    add_test(NAME cli_torch_archive_${arch}
      COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/torch_archives_test.sh ${arch} ${modules} ${flag})
    set_tests_properties(cli_torch_archive_${arch} PROPERTIES LABELS cli TIMEOUT 900)
  endforeach()
  # CUDA (issue #16): "refused" runs where no GPU is visible (one clear error line, nothing written),
  # "extract" where one is (--device cuda features equal --device cpu); each skips (77) elsewhere.
  foreach(mode refused extract)
    add_test(NAME cli_cuda_${mode}
      COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cuda_test.sh ${mode})
    set_tests_properties(cli_cuda_${mode} PROPERTIES LABELS cli FIXTURES_REQUIRED extraction_model
                         SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
  add_test(NAME cli_slurm COMMAND env ${TV_CLI_ENV} bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/slurm_test.sh)
  set_tests_properties(cli_slurm PROPERTIES LABELS slurm FIXTURES_REQUIRED extraction_model
                       SKIP_RETURN_CODE 77)
endif()
