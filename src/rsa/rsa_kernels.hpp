// rsa_kernels.hpp — private helpers of the rsa component: a thread pool loop, Gram tiles, sums, RNG.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "thingsvision/rsa.hpp"

namespace thingsvision::rsa_detail {

/// Threads to use: `requested` if > 0, else all hardware threads (at least 1).
inline int thread_count(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

/// Calls task(i) for i in [0, num_tasks) on up to `num_threads` std::threads, tasks handed out in
/// order from an atomic counter; the first exception thrown by a task is rethrown here.
template <typename Task>
void parallel_for(std::int64_t num_tasks, int num_threads, const Task& task) {
  const int threads = static_cast<int>(std::min<std::int64_t>(thread_count(num_threads), num_tasks));
  if (threads <= 1) {
    for (std::int64_t i = 0; i < num_tasks; ++i) task(i);
    return;
  }
  std::atomic<std::int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (;;) {
      const std::int64_t i = next.fetch_add(1);
      if (i >= num_tasks) return;
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next.store(num_tasks);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

/// The tiles (row block, column block) with row block ≤ column block of an n×n symmetric matrix.
struct TileGrid {
  std::int64_t n = 0, block = 0, num_blocks = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> tiles;
  TileGrid(std::int64_t size, std::int64_t block_size) : n(size), block(block_size) {
    num_blocks = (n + block - 1) / block;
    for (std::int64_t bj = 0; bj < num_blocks; ++bj)
      for (std::int64_t bi = 0; bi <= bj; ++bi) tiles.emplace_back(bi, bj);
  }
  std::int64_t begin(std::int64_t b) const { return b * block; }
  std::int64_t size(std::int64_t b) const { return std::min(block, n - b * block); }
};

/// The system's optimised BLAS (libblas.so.3 → OpenBLAS or BLIS, as numpy uses), loaded at run
/// time so the build needs no BLAS; empty when absent, a reference BLAS, or THINGSVISION_BLAS=0.
struct Blas {
  using SyrkFn = void (*)(int, int, int, int, int, double, const double*, int, double, double*, int);
  using GemmFn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double,
                          double*, int);
  SyrkFn dsyrk = nullptr;
  GemmFn dgemm = nullptr;
  void (*set_threads)(int) = nullptr;
  int (*get_threads)() = nullptr;
  std::string name;
};
const Blas& blas();
constexpr int kCblasColMajor = 102, kCblasNoTrans = 111, kCblasTrans = 112, kCblasUpper = 121;

/// Sets the BLAS thread count for a scope (when `num_threads` > 0 and the BLAS can).
class BlasThreads {
 public:
  explicit BlasThreads(int num_threads);
  ~BlasThreads();
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int previous_ = 0;
};

/// gram = rows · rowsᵀ (both triangles) in double: one BLAS dsyrk, or Eigen GEMM tiles on
/// `num_threads` std::threads without an optimised BLAS.
void gram_matrix(const FeatureMatrixD& rows, RdmMatrix& gram, int num_threads);

/// numpy-style pairwise summation of `n` values (error O(log n · eps)).
double pairwise_sum(const double* values, std::int64_t n);

/// SplitMix64: a tiny portable generator, so seeded results are the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [0, bound) without modulo bias (rejection sampling).
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
    for (;;) {
      const std::uint64_t r = next();
      if (r < limit) return r % bound;
    }
  }

 private:
  std::uint64_t state_;
};

/// Correlation of two equally long vectors without NaN (no size checks); NaN if undefined.
double correlate_valid(const Eigen::Ref<const Eigen::VectorXd>& a,
                       const Eigen::Ref<const Eigen::VectorXd>& b, RdmCorrelation method);
/// correlate_valid that may overwrite `a` and `b` (Spearman ranks them in place).
double correlate_owned(Eigen::VectorXd& a, Eigen::VectorXd& b, RdmCorrelation method);
/// Pearson r as scipy.stats.pearsonr (two-pass, clipped); NaN for a constant vector.
double pearson(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b);
/// Cosine of two vectors; NaN for a zero vector.
double cosine(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b);

/// Squared Euclidean distances of all row pairs (symmetric, zero diagonal), Gram trick with small
/// distances recomputed from the differences (exactly 0 for identical rows).
template <typename Scalar>
RdmMatrix squared_distances(
    const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>& x,
    int num_threads);

/// Copies the strict upper triangle of `m` into its lower triangle, in parallel tiles.
void mirror_upper_to_lower(RdmMatrix& m, int num_threads);

}  // namespace thingsvision::rsa_detail
