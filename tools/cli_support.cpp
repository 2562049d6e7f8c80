// cli_support.cpp — error → exit code mapping shared by the tools.
#include "cli_support.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <sstream>

#include "thingsvision/error.hpp"
#include "thingsvision/version.hpp"

namespace tv_cli {

int run_tool(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const thingsvision::Error& e) {
    std::cerr << tool_name << ": error: " << e.what() << "\n";
    return thingsvision::exit_code(e.kind());
  } catch (const std::exception& e) {
    std::cerr << tool_name << ": error: " << e.what() << "\n";
    return 1;
  }
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* tool_name) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << tool_name << ": error: " << e.what() << " (see --help)\n";
    return 2;
  }
  return std::nullopt;
}

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

std::string version_text(const char* tool_name) {
  return std::string(tool_name) + " " + thingsvision::version_string() + " (LibTorch " +
         thingsvision::torch_version_string() + ")";
}

std::string exit_code_footer() {
  return "Exit codes: 0 done, 1 runtime failure (bad input file, model, I/O), 2 usage error.";
}

std::string command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i > 0) line += ' ';
    const bool plain = !arg.empty() && arg.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/:=+@%") == std::string::npos;
    if (plain) {
      line += arg;
    } else {
      line += '\'';
      for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
      line += '\'';
    }
  }
  return line;
}

std::vector<std::string> split_list(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::array<float, 3> parse_rgb(const std::string& flag, const std::string& text) {
  const auto parts = split_list(text, ',');
  std::array<float, 3> rgb{};
  bool ok = parts.size() == 3;
  for (std::size_t i = 0; ok && i < 3; ++i) {
    char* end = nullptr;
    rgb[i] = std::strtof(parts[i].c_str(), &end);
    ok = end && *end == '\0' && end != parts[i].c_str();
  }
  if (!ok) {
    throw thingsvision::Error(thingsvision::ErrorKind::usage,
                              flag + ": '" + text + "' is not three comma-separated numbers r,g,b");
  }
  return rgb;
}

namespace {

std::string join(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
}

bool same_ignoring_case(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

CLI::Option* add_choice_option(CLI::App& app, const std::string& flag, const std::vector<std::string>& names,
                               const std::function<void(std::size_t)>& set, const std::string& description,
                               const std::string& default_name) {
  const auto choose = [flag, names, set](const std::string& text) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (same_ignoring_case(names[i], text)) return set(i);
    }
    throw thingsvision::Error(thingsvision::ErrorKind::usage,
                              flag + " must be one of " + join(names, ", ") + " (got '" + text + "')");
  };
  return app.add_option_function<std::string>(flag, choose,
                                               description + ": " + join(names, " | ") + " (default " +
                                                   default_name + ")")
      ->type_name("NAME");
}

}  // namespace tv_cli
