# tv_add_model_test(TEST FIXTURE SCRIPT DATA [LIBS ...]): the fixture FIXTURE runs
# tests/reference/SCRIPT into data/DATA; the gtest TEST (TEST.cpp, component tv_model) needs it.
function(tv_add_model_test test fixture script data)
  tv_add_fixture(${fixture} ${THINGSVISION_PYTHON}
    ${CMAKE_CURRENT_SOURCE_DIR}/reference/${script} ${TV_TEST_DATA_DIR}/${data})
  tv_add_test(${test} SOURCES ${test}.cpp COMPONENTS tv_model FIXTURES ${fixture} ${ARGN})
endfunction()

# Model tests: seeded torchvision models exported by Debian's torch (scripted and traced), with
# reference activations from Python forward hooks (tests/reference/export_test_models.py).
tv_add_model_test(model_test model_data export_test_models.py model
  LIBS nlohmann_json::nlohmann_json)

# CLIP archives as OpenAI publishes them (traced on CUDA in float16): stand-ins with "cuda" device
# constants, float16 casts and weights; float32 references with the same half-rounded weights.
tv_add_model_test(clip_checkpoint_test clip_fp16_data make_fp16_clip_standin.py clip_fp16
  LIBS nlohmann_json::nlohmann_json tv_torch ${TORCH_LIBRARIES})
target_include_directories(clip_checkpoint_test SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})

# The OpenCV DNN backend: one seeded resnet18 exported as TorchScript and as ONNX, with Python
# forward-hook references (tests/reference/export_onnx_models.py).
tv_add_model_test(onnx_backend_test onnx_data export_onnx_models.py onnx
  LIBS nlohmann_json::nlohmann_json)

# The OpenCV DNN backend's formats and layouts (tests/model/opencv_dnn_formats_test.cpp): a small model
# exported to ONNX with NCHW and NHWC input (tests/reference/export_onnx_layout_models.py), and a
# TensorFlow frozen graph and Caffe model built as protobuf messages with numpy references
# (tests/reference/make_tf_caffe_models.py; no TensorFlow or Caffe needed).
tv_add_fixture(onnx_layout_data ${THINGSVISION_PYTHON}
  ${CMAKE_CURRENT_SOURCE_DIR}/reference/export_onnx_layout_models.py ${TV_TEST_DATA_DIR}/onnx_layout)
tv_add_fixture(tf_caffe_data ${THINGSVISION_PYTHON}
  ${CMAKE_CURRENT_SOURCE_DIR}/reference/make_tf_caffe_models.py ${TV_TEST_DATA_DIR}/tf_caffe)
# One fixture name for both (tv_add_test passes a single FIXTURES_REQUIRED value through).
set_property(TEST fixture_onnx_layout_data fixture_tf_caffe_data APPEND
  PROPERTY FIXTURES_SETUP opencv_dnn_formats_data)
tv_add_test(opencv_dnn_formats_test SOURCES opencv_dnn_formats_test.cpp COMPONENTS tv_model
  FIXTURES opencv_dnn_formats_data LIBS Eigen3::Eigen)

# Model::optimization_status, extraction_graph while the optimized graph is unchecked, and the
# image input (no copy unless the graph may write into it): small seeded models, some writing into
# their input (tests/reference/export_optimize_models.py).
tv_add_fixture(model_optimize_data ${THINGSVISION_PYTHON}
  ${CMAKE_CURRENT_SOURCE_DIR}/reference/export_optimize_models.py ${TV_TEST_DATA_DIR}/model_optimize)
# One fixture name for both (tv_add_test passes a single FIXTURES_REQUIRED value through): the
# torchvision resnet18 of model_data runs without a copy of its input too.
set_property(TEST fixture_model_data fixture_model_optimize_data APPEND
  PROPERTY FIXTURES_SETUP model_optimize_all_data)
tv_add_test(model_optimize_test SOURCES model_optimize_test.cpp COMPONENTS tv_model
  FIXTURES model_optimize_all_data LIBS nlohmann_json::nlohmann_json)

# The ONNX graph rewrite OpenCV DNN reads plain torch.onnx.export files through (Identity nodes
# removed in memory) and its protobuf wire format: graphs built in the test.
tv_add_test(onnx_graph_test SOURCES onnx_graph_test.cpp COMPONENTS tv_model)

# CUDA (issue #16): resnet18, vit_b_16, CORnet-RT and the float16 CLIP stand-in on the GPU against
# the CPU / the eager float16 model (tests/reference/export_cuda_models.py exports them only where
# its torch sees a GPU). Without one every test is a ctest SKIP with the reason.
tv_add_model_test(cuda_test cuda_data export_cuda_models.py cuda LIBS nlohmann_json::nlohmann_json)
