// output_directory.cpp — what a job's OUT directory holds and may hold: module directory names, the
// run journal, the checks before --resume/--overwrite, removal of an earlier run, free space, the
// writers' settings.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

#include "extraction/job.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/manifest.hpp"

namespace thingsvision {

namespace fs = std::filesystem;

std::string escape_module_name(const std::string& module_name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < module_name.size(); ++i) {
    const auto c = static_cast<unsigned char>(module_name[i]);
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string unescape_module_name(const std::string& directory_name) {
  auto hex_value = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw Error(ErrorKind::usage, fmt::format("'{}' is not an escaped module name", directory_name));
  };
  std::string out;
  for (std::size_t i = 0; i < directory_name.size(); ++i) {
    if (directory_name[i] != '%') {
      out += directory_name[i];
      continue;
    }
    if (i + 2 >= directory_name.size()) {
      throw Error(ErrorKind::usage, fmt::format("'{}' is not an escaped module name", directory_name));
    }
    out += static_cast<char>(hex_value(directory_name[i + 1]) * 16 + hex_value(directory_name[i + 2]));
    i += 2;
  }
  return out;
}

}  // namespace thingsvision

namespace thingsvision::detail {

namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

/// Free bytes on the file system holding `directory` (test hook: TV_FAKE_FREE_BYTES overrides).
double free_bytes(fs::path directory) {
  if (const char* fake = std::getenv("TV_FAKE_FREE_BYTES")) return std::atof(fake);
  while (!directory.empty() && !fs::exists(directory)) directory = directory.parent_path();
  if (directory.empty()) directory = ".";
  struct statvfs info {};
  if (::statvfs(directory.c_str(), &info) != 0) return -1;
  return static_cast<double>(info.f_bavail) * static_cast<double>(info.f_frsize);
}

double bytes_per_value(OutputFormat format, DataType dtype) {
  if (format == OutputFormat::txt) return 26.0;  // "%.18e" + separator
  switch (dtype) {
    case DataType::float16: return 2;
    case DataType::float32: return 4;
    case DataType::float64: return 8;
  }
  return 4;
}

}  // namespace

JournalState read_journal(const fs::path& file, std::size_t start_index) {
  JournalState state;
  state.next_index = start_index;
  std::ifstream in(file, std::ios::binary);
  if (!in) return state;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::size_t, std::pair<std::string, std::string>> pending_bad;
  std::size_t pos = 0;
  while (true) {
    const auto end = text.find('\n', pos);
    if (end == std::string::npos) break;  // an incomplete last line is ignored
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    std::istringstream fields(line.substr(std::min<std::size_t>(2, line.size())));
    switch (line[0]) {
      case 'B': {
        std::size_t next = 0, rows = 0;
        if (fields >> next >> rows) {
          state.next_index = next;
          state.rows = rows;
          for (auto it = pending_bad.begin(); it != pending_bad.end();) {
            if (it->first < next) {
              state.bad.insert(*it);
              it = pending_bad.erase(it);
            } else {
              ++it;
            }
          }
        }
        break;
      }
      case 'S': {  // S index\tpath\treason
        const std::string rest = line.substr(2);
        const auto t1 = rest.find('\t'), t2 = rest.find('\t', t1 == std::string::npos ? t1 : t1 + 1);
        if (t1 != std::string::npos && t2 != std::string::npos) {
          pending_bad[std::stoul(rest.substr(0, t1))] = {rest.substr(t1 + 1, t2 - t1 - 1), rest.substr(t2 + 1)};
        }
        break;
      }
      case 'C': state.committing = true; break;
      case 'M': state.committed.insert(line.substr(2)); break;
      default: break;
    }
  }
  return state;
}

Journal::Journal(fs::path file) : file_(std::move(file)) {
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0) {
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
  }
}

void Journal::remove() {
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(file_, ec);
}

std::optional<Manifest> check_output_directory(const fs::path& output, bool resume, bool overwrite) {
  const fs::path manifest_file = output / "manifest.json";
  if (!fs::exists(manifest_file)) return std::nullopt;
  Manifest previous = read_manifest(manifest_file);
  if (overwrite) return previous;
  if (previous.status == "complete" && !resume) {
    throw Error(ErrorKind::usage,
                fmt::format("--out: '{}' holds a finished extraction; pass --overwrite to replace it or "
                            "choose another directory", output.string()));
  }
  if (previous.status != "complete" && !resume) {
    // An unfinished run that made nothing durable (it stopped at its first batch, e.g. at a bad image
    // without --skip-bad) holds nothing to continue: it is replaced, whatever the options now.
    const JournalState state = read_journal(output / journal_name, 0);
    if (state.rows == 0 && state.bad.empty() && !state.committing) return previous;
    throw Error(ErrorKind::usage,
                fmt::format("--out: '{}' holds an unfinished extraction; pass --resume to continue it or "
                            "--overwrite to start again", output.string()));
  }
  return previous;
}

void remove_previous_outputs(const fs::path& output, const std::vector<std::string>& directories) {
  std::error_code ec;
  for (const char* name : {"manifest.json", "file_names.txt", journal_name}) fs::remove(output / name, ec);
  for (const auto& directory : directories) {
    const std::string top = directory.substr(0, directory.find('/'));
    if (!top.empty() && top != "." && top != "..") fs::remove_all(output / top, ec);
  }
}

void remove_journal_files(const fs::path& directory) {
  std::error_code ec;
  std::vector<fs::path> journals;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (entry.path().filename().string().find(".journal") != std::string::npos) journals.push_back(entry.path());
  }
  for (const auto& file : journals) fs::remove(file, ec);
}

std::vector<std::string> features_files(const fs::path& output, const std::string& directory) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output / directory, ec)) {
    const std::string name = entry.path().filename().string();
    const bool temporary = name.find(".tmp") != std::string::npos || name.find(".partial") != std::string::npos ||
                           name.find(".journal") != std::string::npos;
    if (name.rfind("features", 0) == 0 && !temporary && entry.is_regular_file()) {
      files.push_back(directory + "/" + name);
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool committed_without_record(const fs::path& directory) {
  bool final_file = false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".journal") != std::string::npos) return false;
    if (name.rfind("features", 0) == 0 && name.find(".partial") == std::string::npos) final_file = true;
  }
  return final_file;
}

WriterOptions writer_options_for(const ExtractionOptions& options) {
  WriterOptions writer_options;
  writer_options.dtype = options.dtype;
  writer_options.n_splits = options.n_splits;
  writer_options.mat_version = options.mat_version;
  writer_options.mat_variable_per_image = options.mat_variable_per_image;
  return writer_options;
}

void check_free_space(const fs::path& output, const std::vector<Output>& outputs, OutputFormat format,
                      DataType dtype, std::size_t num_images) {
  double bytes_per_image = 0;
  for (const auto& o : outputs) {
    double values = 1;
    for (auto d : o.row_shape) values *= static_cast<double>(d);
    bytes_per_image += values * bytes_per_value(format, dtype);
  }
  const double remaining = static_cast<double>(num_images);
  const double needed = 2.0 * bytes_per_image * remaining;  // journal + final file while committing
  const double available = free_bytes(output);
  if (available >= 0 && needed > available) {
    throw Error(ErrorKind::io,
                fmt::format("--out: the features need about {} ({} per image × {} images, twice while "
                            "committing) but '{}' has {} free; use --pool, --random-projection or "
                            "--dtype float16, or pass --no-space-check",
                            human_bytes(needed), human_bytes(bytes_per_image), remaining, output.string(),
                            human_bytes(available)));
  }
}

}  // namespace thingsvision::detail
