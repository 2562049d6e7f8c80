// progress.cpp — the terminal progress line of a running job and the summary line of a finished one.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "thingsvision/extraction.hpp"

namespace thingsvision {

ProgressCallback terminal_progress(int fd) {
  return [fd](const ExtractionProgress& p) {
    const std::size_t images_now = p.images_done - std::min(p.images_before, p.images_done);
    const double rate = p.seconds > 0 ? static_cast<double>(images_now) / p.seconds : 0.0;
    const long eta = rate > 0 ? static_cast<long>(static_cast<double>(p.images_total - p.images_done) / rate + 0.5) : 0;
    std::string line = fmt::format("\r\033[K{:>7}/{} images  {:.1f} images/s  ETA {}:{:02}", p.images_done,
                                   p.images_total, rate, eta / 60, eta % 60);
    if (p.images_done >= p.images_total) line += "\n";
    const ssize_t ignored = ::write(fd, line.data(), line.size());
    (void)ignored;
  };
}

std::string summary_line(const ExtractionResult& r) {
  const char* rows = r.text ? "texts" : "images";
  if (r.already_complete) {
    return fmt::format("'{}' is already complete ({} {}, {} outputs); nothing to do", r.output.string(),
                       r.num_images, rows, r.modules.size());
  }
  // images/s over this run's images and its extraction time (as terminal_progress), without the
  // model load (and optimize), which does not grow with the image count.
  const std::size_t now = r.num_images - std::min(r.images_before, r.num_images);
  const double rate = r.extract_seconds > 0 ? static_cast<double>(now) / r.extract_seconds : 0.0;
  const std::string resumed =
      r.images_before > 0 ? fmt::format(" ({} done before, {} now)", r.images_before, now) : std::string();
  std::string line = fmt::format("extracted {} {}{} × {} output{} in {:.1f} s ({:.1f} {}/s{} after a {:.1f} s "
                                 "model load) → {}",
                                 r.num_images, rows, resumed, r.modules.size(), r.modules.size() == 1 ? "" : "s",
                                 r.seconds, rate, rows,
                                 r.images_before > 0 ? fmt::format(" over the {} new", now) : std::string(),
                                 r.load_seconds, r.output.string());
  if (!r.skipped.empty()) line += fmt::format("; {} skipped (listed in manifest.json)", r.skipped.size());
  return line;
}

}  // namespace thingsvision
