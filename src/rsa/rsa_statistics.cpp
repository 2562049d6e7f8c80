// rsa_statistics.cpp — seeded permutation test and bootstrap confidence interval for correlate_rdms.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "rsa/rsa_kernels.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rsa.hpp"

namespace thingsvision {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// A generator for draw `index` of a run seeded with `seed`: independent of thread scheduling.
rsa_detail::SplitMix64 generator_for(std::uint64_t seed, std::uint64_t index) {
  rsa_detail::SplitMix64 mix(seed ^ (0xD1B54A32D192ED03ULL * (index + 1)));
  return rsa_detail::SplitMix64(mix.next());
}

/// A uniformly random permutation of 0..n-1 (Fisher–Yates).
std::vector<std::int64_t> random_permutation(std::int64_t n, rsa_detail::SplitMix64& rng) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

/// The strict upper triangle of m(p, p).
Eigen::VectorXd permuted_upper(const Eigen::Ref<const RdmMatrix>& m, const std::vector<std::int64_t>& p) {
  const auto n = static_cast<std::int64_t>(p.size());
  Eigen::VectorXd out(n * (n - 1) / 2);
  std::int64_t k = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) out[k++] = m(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  return out;
}

void check_pair(const Eigen::Ref<const RdmMatrix>& a, const Eigen::Ref<const RdmMatrix>& b, const char* function) {
  if (a.rows() != a.cols() || b.rows() != b.cols() || a.rows() != b.rows()) {
    throw Error(ErrorKind::usage,
                fmt::format("{}: the RDMs must be square and of the same size, got {}×{} and {}×{}", function,
                            a.rows(), a.cols(), b.rows(), b.cols()));
  }
  if (a.rows() < 3) {
    throw Error(ErrorKind::usage, fmt::format("{}: needs at least 3 conditions, got N = {}", function, a.rows()));
  }
}

/// NaN-aware correlation of two vectors of pairs (no size checks).
double correlate_pairs(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b,
                       RdmCorrelation method) {
  std::int64_t valid = 0;
  for (Eigen::Index k = 0; k < a.size(); ++k) valid += !(std::isnan(a[k]) || std::isnan(b[k]));
  if (valid == a.size()) return rsa_detail::correlate_valid(a, b, method);
  Eigen::VectorXd x(valid), y(valid);
  std::int64_t m = 0;
  for (Eigen::Index k = 0; k < a.size(); ++k) {
    if (std::isnan(a[k]) || std::isnan(b[k])) continue;
    x[m] = a[k];
    y[m] = b[k];
    ++m;
  }
  return rsa_detail::correlate_valid(x, y, method);
}

/// numpy.percentile(values, q) with the default linear interpolation; `values` sorted.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double position = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(position));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = position - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

PermutationResult permutation_test(const Eigen::Ref<const RdmMatrix>& a, const Eigen::Ref<const RdmMatrix>& b,
                                   RdmCorrelation method, int permutations, std::uint64_t seed) {
  check_pair(a, b, "permutation_test");
  if (permutations < 1) {
    throw Error(ErrorKind::usage,
                fmt::format("permutation_test: the number of permutations must be at least 1, got {}", permutations));
  }
  PermutationResult result;
  result.observed = correlate_rdms(a, b, method);
  const std::int64_t n = a.rows();
  const Eigen::VectorXd va = strict_upper_triangle(a);
  const bool has_nan = va.hasNaN() || b.hasNaN();
  // Without NaN, ranks (Spearman) are permutation-equivariant: rank once, then permute the ranks.
  const bool rank_once = !has_nan && method != RdmCorrelation::kendall;
  RdmCorrelation per_draw = method;
  Eigen::VectorXd ta = va;
  RdmMatrix tb = b;
  if (rank_once && method == RdmCorrelation::spearman) {
    ta = average_ranks(va);
    tb = square_rdm(average_ranks(strict_upper_triangle(b)));
    per_draw = RdmCorrelation::pearson;
  }
  result.null_distribution.assign(static_cast<std::size_t>(permutations), kNaN);
  rsa_detail::parallel_for(permutations, 0, [&](std::int64_t draw) {
    auto rng = generator_for(seed, static_cast<std::uint64_t>(draw));
    const Eigen::VectorXd vb = permuted_upper(tb, random_permutation(n, rng));
    result.null_distribution[static_cast<std::size_t>(draw)] =
        rank_once ? rsa_detail::correlate_valid(ta, vb, per_draw) : correlate_pairs(ta, vb, method);
  });
  std::int64_t at_least = 0;
  for (const double r : result.null_distribution) at_least += r >= result.observed;
  result.p_value = static_cast<double>(1 + at_least) / static_cast<double>(1 + permutations);
  return result;
}

BootstrapResult bootstrap_ci(const Eigen::Ref<const RdmMatrix>& a, const Eigen::Ref<const RdmMatrix>& b,
                             RdmCorrelation method, int samples, double level, std::uint64_t seed) {
  check_pair(a, b, "bootstrap_ci");
  if (samples < 1) {
    throw Error(ErrorKind::usage,
                fmt::format("bootstrap_ci: the number of samples must be at least 1, got {}", samples));
  }
  if (!(level > 0 && level < 1)) {
    throw Error(ErrorKind::usage, fmt::format("bootstrap_ci: level must be in (0, 1), got {}", level));
  }
  BootstrapResult result;
  result.observed = correlate_rdms(a, b, method);
  const std::int64_t n = a.rows();
  std::vector<double> draws(static_cast<std::size_t>(samples), kNaN);
  rsa_detail::parallel_for(samples, 0, [&](std::int64_t s) {
    auto rng = generator_for(seed, static_cast<std::uint64_t>(s));
    std::vector<std::int64_t> pick(static_cast<std::size_t>(n));
    for (auto& p : pick) p = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
    std::sort(pick.begin(), pick.end());
    std::vector<std::int64_t> unique_pick(pick);
    unique_pick.erase(std::unique(unique_pick.begin(), unique_pick.end()), unique_pick.end());
    if (unique_pick.size() < 3) return;  // skipped, as rsatoolbox gives NaN
    std::vector<double> x, y;
    x.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
    y.reserve(x.capacity());
    for (std::size_t i = 0; i < pick.size(); ++i) {
      for (std::size_t j = i + 1; j < pick.size(); ++j) {
        if (pick[i] == pick[j]) continue;  // a condition with its own duplicate
        x.push_back(a(pick[i], pick[j]));
        y.push_back(b(pick[i], pick[j]));
      }
    }
    draws[static_cast<std::size_t>(s)] =
        correlate_pairs(Eigen::Map<const Eigen::VectorXd>(x.data(), static_cast<Eigen::Index>(x.size())),
                        Eigen::Map<const Eigen::VectorXd>(y.data(), static_cast<Eigen::Index>(y.size())), method);
  });
  for (const double r : draws)
    if (!std::isnan(r)) result.samples.push_back(r);
  std::vector<double> sorted = result.samples;
  std::sort(sorted.begin(), sorted.end());
  result.lower = percentile(sorted, 100.0 * (1.0 - level) / 2.0);
  result.upper = percentile(sorted, 100.0 * (1.0 + level) / 2.0);
  return result;
}

}  // namespace thingsvision
