// tv_merge.cpp — tv-merge: join tv-extract shards (or runs of one job) into one output, bit for bit.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "thingsvision/extraction.hpp"

int main(int argc, char** argv) {
  return tv_cli::run_tool("tv-merge", [&]() -> int {
    std::vector<std::string> inputs;
    std::string out;
    bool overwrite = false, quiet = false;
    CLI::App app{"Merge tv-extract output directories (shards of one job, put in shard order; splits "
                 "joined) into one directory with one features file per module. See docs/cli.md."};
    app.set_version_flag("--version", tv_cli::version_text("tv-merge"));
    app.footer(tv_cli::exit_code_footer());
    app.add_option("inputs", inputs, "tv-extract output directories")->required()->check(CLI::ExistingDirectory);
    app.add_option("--out", out, "output directory")->required();
    app.add_flag("--overwrite", overwrite, "replace a merged result already in --out");
    app.add_flag("--quiet", quiet, "no summary line");
    if (const auto exit_code = tv_cli::parse_command_line(app, argc, argv, "tv-merge")) return *exit_code;
    const std::vector<std::filesystem::path> paths(inputs.begin(), inputs.end());
    thingsvision::merge_extractions(paths, out, overwrite, tv_cli::command_line(argc, argv));
    if (!quiet) std::cerr << "tv-merge: merged " << inputs.size() << " directories → " << out << "\n";
    return 0;
  });
}
