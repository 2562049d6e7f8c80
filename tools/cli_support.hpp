// cli_support.hpp — what every tv-* tool shares: error → exit code mapping, tty checks, --version text.
#pragma once
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tv_cli {

/// Runs `body`; turns a thingsvision::Error into one "tool: error: message" line on stderr and its
/// exit code (2 usage, 1 otherwise), any other exception into exit code 1. Returns body's code.
int run_tool(const char* tool_name, const std::function<int()>& body);

/// Parses the command line into `app`: std::nullopt to go on, else the exit code to return: 0 after
/// --help/--version, 2 after "tool_name: error: <CLI11's message> (see --help)" on stderr.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* tool_name);

/// True when file descriptor `fd` is a terminal (progress output, prompts).
bool is_terminal(int fd);

/// "tool_name <library version> (LibTorch <version>)", printed by --version.
std::string version_text(const char* tool_name);

/// The footer every --help ends with: the exit codes.
std::string exit_code_footer();

}  // namespace tv_cli

namespace tv_cli {

/// The command line as one shell-quoted string (recorded in manifests).
std::string command_line(int argc, char** argv);

/// Parses "r,g,b" (three numbers) for `flag`; throws thingsvision::Error(usage) naming the flag.
std::array<float, 3> parse_rgb(const std::string& flag, const std::string& text);

/// Splits `text` at `separator`, dropping empty pieces ("a,b,,c" → a, b, c).
std::vector<std::string> split_list(const std::string& text, char separator = ',');

}  // namespace tv_cli

namespace tv_cli {

/// Adds option `flag` whose value is one of `names` (case-insensitive; nothing else, no numbers): calls
/// `set(i)` for names[i]; help "DESCRIPTION: a | b | c (default D)"; another value is Error(usage)
/// "FLAG must be one of a, b, c (got 'x')".
CLI::Option* add_choice_option(CLI::App& app, const std::string& flag, const std::vector<std::string>& names,
                               const std::function<void(std::size_t)>& set, const std::string& description,
                               const std::string& default_name);

/// add_choice_option for (name, value) pairs stored into `target` (an enum or std::optional of one).
template <class Target, class Value>
CLI::Option* add_choice(CLI::App& app, const std::string& flag, Target& target,
                        const std::vector<std::pair<std::string, Value>>& choices, const std::string& description,
                        const std::string& default_name) {
  std::vector<std::string> names;
  for (const auto& choice : choices) names.push_back(choice.first);
  return add_choice_option(
      app, flag, names, [&target, choices](std::size_t i) { target = choices[i].second; }, description,
      default_name);
}

}  // namespace tv_cli
