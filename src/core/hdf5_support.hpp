// hdf5_support.hpp — private RAII helpers for libhdf5: silence automatic error printing, own an hid_t.
// Header-only: tv_core does not link HDF5; image, storage and rsa, which do, include it.
#pragma once

#include <hdf5.h>

namespace thingsvision::detail {

/// Silences libhdf5's automatic error printing while alive; restores the previous handler after.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &function_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, function_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t function_ = nullptr;
  void* data_ = nullptr;
};

/// Owns an hid_t and closes it with the matching H5*close (`close`) when it goes out of scope.
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  Hdf5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hdf5Handle() { reset(); }
  Hdf5Handle(Hdf5Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hdf5Handle& operator=(Hdf5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  /// Closes the identifier now (if valid) and leaves the handle empty.
  void reset() noexcept {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  /// The identifier, still owned (-1 when empty).
  hid_t get() const noexcept { return id_; }
  /// Gives up ownership: returns the identifier, which the caller must close.
  hid_t release() noexcept {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

}  // namespace thingsvision::detail
