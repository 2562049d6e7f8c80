// stop_signals.cpp — SIGTERM/SIGINT during a run (at once while nothing is written yet, else after
// the next durable batch) and the fault-injection test hook.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include "extraction/job.hpp"

namespace thingsvision::detail {

namespace {

std::atomic<int> g_stop_signal{0};
// While a run has written nothing yet (model load, graph cut, optimize and its check, the probe:
// LibTorch calls that cannot be interrupted), a stop signal writes this line and ends the process
// at once with exit code 1: there is nothing to save, and the same command starts again.
std::atomic<const std::string*> g_stop_now_term{nullptr};
std::atomic<const std::string*> g_stop_now_int{nullptr};

extern "C" void tv_on_stop_signal(int sig) {
  if (const std::string* line = (sig == SIGINT ? g_stop_now_int : g_stop_now_term).load()) {
    const ssize_t written = ::write(STDERR_FILENO, line->data(), line->size());
    (void)written;
    ::_exit(1);
  }
  if (g_stop_signal.load() != 0) {  // a second signal: give up at once
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal.store(sig);
}

}  // namespace

int stop_signal() noexcept { return g_stop_signal.load(); }

StopSignals::StopSignals(const std::filesystem::path& output) {
  const auto line = [&](const char* name) {
    return fmt::format("tv-extract: error: stopped by {} while preparing the run (model load, graph cut, "
                       "optimize); nothing was written to '{}': run the same command again\n",
                       name, output.string());
  };
  stop_now_term_ = line("SIGTERM");
  stop_now_int_ = line("SIGINT");
  g_stop_now_term.store(&stop_now_term_);
  g_stop_now_int.store(&stop_now_int_);
  g_stop_signal.store(0);
  // Test hook: the stop handlers are in place once this file exists (process start and LibTorch's
  // library loading, before them, end with the default action).
  if (const char* ready = std::getenv("TV_TEST_STOP_HANDLERS_READY")) std::ofstream(ready) << "ready\n";
  struct sigaction action {};
  action.sa_handler = tv_on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, &old_term_);
  ::sigaction(SIGINT, &action, &old_int_);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGINT, &old_int_, nullptr);
  writing_starts();
}

void StopSignals::writing_starts() {
  g_stop_now_term.store(nullptr);
  g_stop_now_int.store(nullptr);
}

FaultHook::FaultHook() {
  if (const char* v = std::getenv("TV_FAULT_AFTER_BATCHES")) after_batches = std::atol(v);
  if (const char* s = std::getenv("TV_FAULT_STAGE")) stage = s;
}

void FaultHook::at(const std::string& here, long batches_done) const {
  if (after_batches < 0 || batches_done < after_batches) return;
  if (stage == "sigterm" && here == "batch") {
    std::raise(SIGTERM);
  } else if (stage == here) {
    std::raise(SIGKILL);
  }
}

}  // namespace thingsvision::detail
