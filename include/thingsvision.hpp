// thingsvision.hpp — umbrella header: includes every public header of the library.
#pragma once

#include "thingsvision/activations.hpp"
#include "thingsvision/data_loader.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/feature_writer.hpp"
#include "thingsvision/image.hpp"
#include "thingsvision/image_batch.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/sha256.hpp"
#include "thingsvision/transforms.hpp"
#include "thingsvision/version.hpp"
