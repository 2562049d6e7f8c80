// cli_support.hpp — what every tv-* tool shares: error → exit code mapping, tty checks, --version text.
#pragma once
#include <functional>
#include <string>

namespace tv_cli {

/// Runs `body`; turns a thingsvision::Error into one "tool: error: message" line on stderr and its
/// exit code (2 usage, 1 otherwise), any other exception into exit code 1. Returns body's code.
int run_tool(const char* tool_name, const std::function<int()>& body);

/// True when file descriptor `fd` is a terminal (progress output, prompts).
bool is_terminal(int fd);

/// "tool_name <library version> (LibTorch <version>)", printed by --version.
std::string version_text(const char* tool_name);

/// The footer every --help ends with: the exit codes.
std::string exit_code_footer();

}  // namespace tv_cli
