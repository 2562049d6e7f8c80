// cli_support.cpp — error → exit code mapping shared by the tools.
#include "cli_support.hpp"

#include <unistd.h>

#include <exception>
#include <iostream>

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

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

std::string version_text(const char* tool_name) {
  return std::string(tool_name) + " " + thingsvision::version_string() + " (LibTorch " +
         thingsvision::torch_version_string() + ")";
}

std::string exit_code_footer() {
  return "Exit codes: 0 done, 1 runtime failure (bad input file, model, I/O), 2 usage error.";
}

}  // namespace tv_cli
