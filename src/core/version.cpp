// version.cpp — version strings.
#include "thingsvision/version.hpp"

namespace thingsvision {

std::string version_string() { return THINGSVISION_VERSION_STRING; }

std::string torch_version_string() { return THINGSVISION_TORCH_VERSION_STRING; }

}  // namespace thingsvision
