// model_test_names.hpp — the thingsvision names the model tests use unqualified (model_test,
// onnx_backend_test, opencv_dnn_formats_test): `using namespace tv_test::model_names;`.
#pragma once

#include "thingsvision/error.hpp"
#include "thingsvision/image_batch.hpp"
#include "thingsvision/model.hpp"

namespace tv_test::model_names {

using thingsvision::Activations;
using thingsvision::Error;
using thingsvision::ErrorKind;
using thingsvision::ExtractOptions;
using thingsvision::ImageBatch;
using thingsvision::Model;
using thingsvision::ModelBackendKind;
using thingsvision::ModelOptions;
using thingsvision::ModuleCalls;
using thingsvision::OutputLayout;
using thingsvision::TensorLayout;

}  // namespace tv_test::model_names
