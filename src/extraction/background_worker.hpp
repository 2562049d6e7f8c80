// background_worker.hpp — a thread that runs queued jobs one at a time, in order, with a bounded
// queue: the image job writes a batch while the model computes the next.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace thingsvision::detail {

/// Runs `work` on each pushed job on a thread of its own, one at a time and in push order, with at
/// most `capacity` jobs waiting: the writes of one batch overlap the next forward pass while the
/// activations held stay bounded. `work` returns false to stop taking jobs (a stop signal).
template <typename Job>
class BackgroundWorker {
 public:
  using Work = std::function<bool(Job&)>;
  BackgroundWorker(std::size_t capacity, Work work)
      : capacity_(std::max<std::size_t>(1, capacity)), work_(std::move(work)), thread_([this] { run(); }) {}
  ~BackgroundWorker() { stop(); }
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  /// Queues `job`, blocking while `capacity` jobs wait; false once the worker has stopped (by
  /// `work` returning false or throwing: then stop() and rethrow()).
  bool push(Job job) {
    std::unique_lock<std::mutex> lock(mutex_);
    space_.wait(lock, [&] { return queue_.size() < capacity_ || done_; });
    if (done_) return false;
    queue_.push_back(std::move(job));
    ready_.notify_one();
    return true;
  }
  /// Waits until every queued job is done, ends the thread and rethrows a job's error.
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
    rethrow();
  }
  /// Ends the thread after the job in progress; jobs still waiting are dropped.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      queue_.clear();
    }
    ready_.notify_one();
    space_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// Rethrows the error a job threw (call after finish() or stop()).
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty() || closing_ || done_; });
        if (done_ || queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      bool go_on = false;
      try {
        go_on = work_(job);
      } catch (...) {
        error_ = std::current_exception();
      }
      if (!go_on) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = true;
        queue_.clear();
        space_.notify_all();
        return;
      }
    }
  }

  const std::size_t capacity_;
  Work work_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a job is waiting, or closing_/done_
  std::condition_variable space_;  // the queue has room, or done_
  std::deque<Job> queue_;
  bool closing_ = false;  // finish(): end once the queue is empty
  bool done_ = false;     // stopped: take no more jobs
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace thingsvision::detail
