// compat.hpp — every difference between the platforms thingsvision-cpp builds on, in one place:
// Debian 12 (LibTorch 1.13, OpenCV 4.6, HDF5 1.10, matio 1.5.23, GCC 12), Debian 13 (LibTorch 2.6,
// OpenCV 4.10, HDF5 1.14, matio 1.5.28, GCC 14) and the LibTorch of PyPI's torch wheel (2.x, CUDA).
// Include it after the library header whose differences a file needs (<matio.h>, <torch/script.h>);
// each section is compiled only where that library was included first.
#pragma once

// --- matio -------------------------------------------------------------------------------------
#if defined(MATIO_MAJOR_VERSION)
namespace thingsvision::compat {
// Mat_LogInitFunc's callback takes `const char*` since matio 1.5.27, `char*` before.
#if MATIO_MAJOR_VERSION > 1 || (MATIO_MAJOR_VERSION == 1 && (MATIO_MINOR_VERSION > 5 || \
                                (MATIO_MINOR_VERSION == 5 && MATIO_RELEASE_LEVEL >= 27)))
using matio_log_text = const char*;
#else
using matio_log_text = char*;
#endif
}  // namespace thingsvision::compat
#endif

// --- LibTorch ----------------------------------------------------------------------------------
#if defined(TORCH_VERSION_MAJOR)
namespace thingsvision::compat {
/// LibTorch's version as major * 100 + minor (113 for 1.13, 206 for 2.6).
constexpr int torch_version = TORCH_VERSION_MAJOR * 100 + TORCH_VERSION_MINOR;
}  // namespace thingsvision::compat
#endif

// c10::Event (CUDA events through LibTorch's device-generic interface): synchronize() since 2.0.
#if defined(TORCH_VERSION_MAJOR)
#include <c10/core/Event.h>

#include <thread>
namespace thingsvision::compat {
/// Blocks the calling thread until the work recorded in `event` is done.
inline void synchronize(const c10::Event& event) {
#if TORCH_VERSION_MAJOR >= 2
  event.synchronize();
#else
  while (!event.query()) std::this_thread::yield();  // 1.13's Event has query() only
#endif
}
}  // namespace thingsvision::compat
#endif
