// listing.cpp — --list-modules (every module with its type and output shape) and --show-model.
#include <string>
#include <vector>

#include "extraction/job.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/image.hpp"

namespace thingsvision {

using detail::LoadedModel;
using detail::load_model;
using detail::one_image_batch;

std::vector<ModuleListing> list_modules(const ExtractionOptions& options) {
  ExtractionOptions plain = options;
  plain.optimize = false;  // one image per module set: optimizing would cost more than it saves
  LoadedModel loaded = load_model(plain, options.num_threads > 0 ? options.num_threads : available_cpus());
  const Transform transform = resolve_transform(options, nullptr, &loaded.model.traits());
  Image grey;
  grey.width = grey.height = 256;
  grey.pixels.assign(256 * 256 * 3, 128);
  const ImageBatch batch = one_image_batch(apply_transform(transform, grey), 0);
  std::vector<ModuleListing> listing;
  std::vector<std::string> names;
  for (const auto& info : loaded.model.modules()) {
    listing.push_back({info.name, info.type, {}});
    names.push_back(info.name);
  }
  const auto fill = [&](const std::vector<Activations>& acts) {
    for (const auto& a : acts) {
      for (auto& l : listing) {
        if (l.name == a.module_name) l.output_shape.assign(a.shape.begin() + (a.shape.empty() ? 0 : 1), a.shape.end());
      }
    }
  };
  try {
    fill(loaded.model.extract(batch, names));
  } catch (const Error&) {
    for (const auto& name : names) {  // one by one: modules whose output is not a tensor stay "-"
      try {
        fill(loaded.model.extract(batch, {name}));
      } catch (const Error&) {
      }
    }
  }
  return listing;
}

std::string show_model(const ExtractionOptions& options) {
  return load_model(options, 1).model.module_tree();
}

}  // namespace thingsvision
