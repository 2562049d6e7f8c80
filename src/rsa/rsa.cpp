// rsa.cpp — RDMs through one Gram GEMM in double, average ranks, RDM correlations, feature scaling.
#include "thingsvision/rsa.hpp"

#include <fmt/format.h>

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <string>

#include "rsa/rsa_kernels.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// Gram-derived distances below this fraction of the rows' squared norms are recomputed directly:
/// the Gram trick's cancellation error is ~1e-16 × the norms, so what is kept is good to ~1e-13.
constexpr double kRecomputeFraction = 1e-3;
/// Tile edge of the Gram GEMM (rows per block).
constexpr std::int64_t kGramBlock = 256;

template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void check_not_empty(std::int64_t rows, std::int64_t cols, const char* function) {
  if (rows == 0 || cols == 0) {
    throw Error(ErrorKind::usage, fmt::format("{}: the feature matrix is empty (N = {}, D = {})",
                                              function, rows, cols));
  }
}

/// Row-major double copy of `x`; with `row_means` each row minus its mean (stored there), with
/// `center_columns` each column minus its mean (distances do not change, the Gram trick loses less).
template <typename Scalar>
FeatureMatrixD to_double(const Eigen::Ref<const RowMatrix<Scalar>>& x, std::vector<double>* row_means,
                         bool center_columns, int num_threads) {
  const std::int64_t n = x.rows(), d = x.cols();
  FeatureMatrixD out(n, d);
  if (row_means) row_means->assign(static_cast<std::size_t>(n), 0.0);
  rsa_detail::parallel_for(n, num_threads, [&](std::int64_t i) {
    out.row(i) = x.row(i).template cast<double>();
    if (row_means) {
      const double mean = rsa_detail::pairwise_sum(out.row(i).data(), d) / static_cast<double>(d);
      (*row_means)[static_cast<std::size_t>(i)] = mean;
      out.row(i).array() -= mean;
    }
  });
  if (center_columns) {
    Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(d);
    for (std::int64_t i = 0; i < n; ++i) mean += out.row(i);
    mean /= static_cast<double>(n);
    rsa_detail::parallel_for(n, num_threads, [&](std::int64_t i) { out.row(i) -= mean; });
  }
  return out;
}

/// Σ_k (a_k − b_k)² in double, straight from the input rows.
template <typename Scalar>
double direct_squared_distance(const Scalar* a, const Scalar* b, std::int64_t d) {
  double sum = 0;
  for (std::int64_t k = 0; k < d; ++k) {
    const double diff = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    sum += diff * diff;
  }
  return sum;
}

/// ½‖ũ − ṽ‖² = 1 − r for ũ = (u − μu)/‖u − μu‖: the correlation (cosine: μ = 0) distance of two
/// near-identical rows without the cancellation of 1 − r.
template <typename Scalar>
double direct_angle_distance(const Scalar* a, const Scalar* b, std::int64_t d, double mean_a,
                             double mean_b, double norm_a, double norm_b) {
  double sum = 0;
  for (std::int64_t k = 0; k < d; ++k) {
    const double diff = (static_cast<double>(a[k]) - mean_a) / norm_a -
                        (static_cast<double>(b[k]) - mean_b) / norm_b;
    sum += diff * diff;
  }
  return 0.5 * sum;
}

template <typename Scalar>
RdmMatrix angle_rdm(const Eigen::Ref<const RowMatrix<Scalar>>& x, bool centre, int num_threads) {
  const std::int64_t n = x.rows(), d = x.cols();
  std::vector<double> mean;
  FeatureMatrixD rows = to_double<Scalar>(x, centre ? &mean : nullptr, false, num_threads);
  if (!centre) mean.assign(static_cast<std::size_t>(n), 0.0);
  std::vector<double> norm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) norm[static_cast<std::size_t>(i)] = std::sqrt(rows.row(i).squaredNorm());
  RdmMatrix rdm(n, n);
  rsa_detail::gram_matrix(rows, rdm, num_threads);
  rows.resize(0, 0);
  rsa_detail::parallel_for(n, num_threads, [&](std::int64_t j) {
    double* column = rdm.col(j).data();
    for (std::int64_t i = 0; i < j; ++i) {
      if (norm[i] == 0 || norm[j] == 0) {
        column[i] = kNaN;
        continue;
      }
      const double r = std::clamp(column[i] / (norm[i] * norm[j]), -1.0, 1.0);
      double dist = 1.0 - r;
      if (dist < kRecomputeFraction) {
        dist = direct_angle_distance(x.row(i).data(), x.row(j).data(), d, mean[i], mean[j],
                                     norm[i], norm[j]);
      }
      column[i] = dist;
    }
    column[j] = 0.0;
  });
  rsa_detail::mirror_upper_to_lower(rdm, num_threads);
  return rdm;
}

template <typename Scalar>
RdmMatrix compute_rdm_impl(const Eigen::Ref<const RowMatrix<Scalar>>& x, RdmMethod method,
                           int num_threads) {
  check_not_empty(x.rows(), x.cols(), "compute_rdm");
  switch (method) {
    case RdmMethod::correlation:
      return angle_rdm<Scalar>(x, true, num_threads);
    case RdmMethod::cosine:
      return angle_rdm<Scalar>(x, false, num_threads);
    default:
      break;
  }
  const std::int64_t n = x.rows();
  RdmMatrix rdm = rsa_detail::squared_distances<Scalar>(x, num_threads);
  if (method == RdmMethod::euclidean) {
    rdm = rdm.array().sqrt().matrix();
  } else if (method == RdmMethod::sqeuclidean) {
    rdm /= static_cast<double>(x.cols());
  } else {  // gaussian: mean over all n² entries, the zero diagonal included
    std::vector<double> column_sums(static_cast<std::size_t>(n));
    rsa_detail::parallel_for(n, num_threads, [&](std::int64_t j) {
      column_sums[j] = rsa_detail::pairwise_sum(rdm.col(j).data(), n);
    });
    const double mean = rsa_detail::pairwise_sum(column_sums.data(), n) / (static_cast<double>(n) * n);
    rsa_detail::parallel_for(n, num_threads, [&](std::int64_t j) {
      double* column = rdm.col(j).data();
      // all rows identical: every dissimilarity is 0 (THINGSvision would give 0/0 = NaN)
      for (std::int64_t i = 0; i < n; ++i) column[i] = mean > 0 ? -std::expm1(-column[i] / mean) : 0.0;
    });
  }
  return rdm;
}

/// Removes, in place, the pairs where either vector is NaN.
void compact_nan_pairs(Eigen::VectorXd& a, Eigen::VectorXd& b) {
  Eigen::Index m = 0;
  for (Eigen::Index k = 0; k < a.size(); ++k) {
    if (std::isnan(a[k]) || std::isnan(b[k])) continue;
    a[m] = a[k];
    b[m] = b[k];
    ++m;
  }
  if (m != a.size()) {
    a.conservativeResize(m);
    b.conservativeResize(m);
  }
}

/// Replaces `values` by their average ranks (scipy rankdata "average"; ties are exact equality).
/// The (value, index) items are sorted in `num_threads` chunks in parallel, then walked in merged
/// order; the only extra memory is the items (16 bytes per value).
void rank_in_place(Eigen::VectorXd& values, int num_threads) {
  const std::int64_t n = values.size();
  struct Item {
    double value;
    std::int64_t index;
  };
  std::vector<Item> items(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k) items[static_cast<std::size_t>(k)] = {values[k], k};
  const std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>(rsa_detail::thread_count(num_threads), n / 4096));
  std::vector<std::int64_t> begin(static_cast<std::size_t>(chunks + 1));
  for (std::int64_t c = 0; c <= chunks; ++c) begin[static_cast<std::size_t>(c)] = n * c / chunks;
  rsa_detail::parallel_for(chunks, num_threads, [&](std::int64_t c) {
    std::sort(items.begin() + begin[static_cast<std::size_t>(c)], items.begin() + begin[static_cast<std::size_t>(c) + 1],
              [](const Item& l, const Item& r) { return l.value < r.value; });
  });
  std::vector<std::int64_t> cursor(begin.begin(), begin.end() - 1);
  auto smallest = [&]() {  // the chunk whose next item is smallest, -1 when all are done
    std::int64_t best = -1;
    for (std::int64_t c = 0; c < chunks; ++c) {
      const auto cu = cursor[static_cast<std::size_t>(c)];
      if (cu == begin[static_cast<std::size_t>(c) + 1]) continue;
      if (best < 0 || items[static_cast<std::size_t>(cu)].value < items[static_cast<std::size_t>(cursor[static_cast<std::size_t>(best)])].value) best = c;
    }
    return best;
  };
  std::vector<std::int64_t> run;  // item positions of one run of equal values
  std::int64_t position = 0;      // 0-based sorted position of the run's first item
  for (std::int64_t c = smallest(); c >= 0; c = smallest()) {
    const double value = items[static_cast<std::size_t>(cursor[static_cast<std::size_t>(c)])].value;
    run.clear();
    for (std::int64_t k = 0; k < chunks; ++k) {
      auto& cu = cursor[static_cast<std::size_t>(k)];
      while (cu < begin[static_cast<std::size_t>(k) + 1] && items[static_cast<std::size_t>(cu)].value == value) run.push_back(cu++);
    }
    const auto count = static_cast<std::int64_t>(run.size());
    // sorted positions position..position+count-1 share rank (first + last)/2 + 1
    const double rank = 0.5 * static_cast<double>(2 * position + count - 1) + 1.0;
    for (const auto r : run) values[items[static_cast<std::size_t>(r)].index] = rank;
    position += count;
  }
}

/// Number of strictly inverted pairs (i < j, y_i > y_j), by bottom-up merge sort of `y`.
std::int64_t count_inversions(std::vector<double>& y) {
  const std::size_t n = y.size();
  std::vector<double> buffer(n);
  std::int64_t inversions = 0;
  for (std::size_t width = 1; width < n; width *= 2) {
    for (std::size_t lo = 0; lo < n; lo += 2 * width) {
      const std::size_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      std::size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (y[j] < y[i]) {
          inversions += static_cast<std::int64_t>(mid - i);
          buffer[k++] = y[j++];
        } else {
          buffer[k++] = y[i++];
        }
      }
      while (i < mid) buffer[k++] = y[i++];
      while (j < hi) buffer[k++] = y[j++];
    }
    std::swap(y, buffer);
  }
  return inversions;
}

/// Σ c(c − 1)/2 over the runs of equal values of a sorted sequence.
template <typename Equal>
std::int64_t tied_pairs(std::size_t n, const Equal& equal) {
  std::int64_t ties = 0;
  std::size_t start = 0;
  while (start < n) {
    std::size_t end = start + 1;
    while (end < n && equal(start, end)) ++end;
    const auto c = static_cast<std::int64_t>(end - start);
    ties += c * (c - 1) / 2;
    start = end;
  }
  return ties;
}

/// Kendall's tau-b exactly as scipy.stats.kendalltau (O(n log n), same integer counts, same formula).
double kendall_tau_b(const Eigen::Ref<const Eigen::VectorXd>& x, const Eigen::Ref<const Eigen::VectorXd>& y) {
  const std::size_t n = static_cast<std::size_t>(x.size());
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t l, std::size_t r) {
    return x[l] < x[r] || (x[l] == x[r] && y[l] < y[r]);
  });
  std::vector<double> xs(n), ys(n);
  for (std::size_t k = 0; k < n; ++k) {
    xs[k] = x[order[k]];
    ys[k] = y[order[k]];
  }
  const std::int64_t xtie = tied_pairs(n, [&](std::size_t s, std::size_t e) { return xs[s] == xs[e]; });
  const std::int64_t ntie = tied_pairs(
      n, [&](std::size_t s, std::size_t e) { return xs[s] == xs[e] && ys[s] == ys[e]; });
  const std::int64_t dis = count_inversions(ys);  // leaves ys sorted
  const std::int64_t ytie = tied_pairs(n, [&](std::size_t s, std::size_t e) { return ys[s] == ys[e]; });
  const auto size = static_cast<std::int64_t>(n);
  const std::int64_t tot = size * (size - 1) / 2;
  if (xtie == tot || ytie == tot) return kNaN;
  const std::int64_t con_minus_dis = tot - xtie - ytie + ntie - 2 * dis;
  const double tau = static_cast<double>(con_minus_dis) / std::sqrt(static_cast<double>(tot - xtie)) /
                     std::sqrt(static_cast<double>(tot - ytie));
  return std::min(1.0, std::max(-1.0, tau));
}

template <typename Matrix>
void center_impl(Matrix& features) {
  const Eigen::Index n = features.rows();
  if (n == 0) return;
  Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(features.cols());
  for (Eigen::Index i = 0; i < n; ++i) mean += features.row(i).template cast<double>();
  mean /= static_cast<double>(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    features.row(i) =
        (features.row(i).template cast<double>() - mean).template cast<typename Matrix::Scalar>();
  }
}

template <typename Matrix>
void normalize_impl(Matrix& features) {
  for (Eigen::Index i = 0; i < features.rows(); ++i) {
    const double norm = std::sqrt(features.row(i).template cast<double>().squaredNorm());
    if (norm > 0) {
      features.row(i) =
          (features.row(i).template cast<double>() / norm).template cast<typename Matrix::Scalar>();
    }
  }
}

/// Order-preserving 64-bit key of a double (−0.0 and +0.0 share one key; no NaN here).
inline std::uint64_t sort_key(double v) {
  if (v == 0) v = 0.0;
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits >> 63) ? ~bits : bits | 0x8000000000000000ULL;
}

/// Doubled average ranks (2·rank = first + last + 2 over 0-based sorted positions, an integer) of
/// the M values whose keys `fill(keys)` writes, by LSD radix sort (8-bit digits, digits that are the
/// same for all values skipped). Memory: 24 bytes per value while sorting, 4 in the result.
template <typename Fill>
std::vector<std::uint32_t> doubled_ranks(std::int64_t m, const Fill& fill) {
  const auto size = static_cast<std::size_t>(m);
  std::vector<std::uint64_t> keys(size), keys_tmp(size);
  std::vector<std::uint32_t> index(size), index_tmp(size);
  fill(keys.data());
  std::vector<std::array<std::uint64_t, 256>> counts(8);
  for (auto& c : counts) c.fill(0);
  for (std::size_t k = 0; k < size; ++k) {
    index[k] = static_cast<std::uint32_t>(k);
    for (int d = 0; d < 8; ++d) ++counts[static_cast<std::size_t>(d)][(keys[k] >> (8 * d)) & 0xff];
  }
  for (int d = 0; d < 8; ++d) {
    auto& c = counts[static_cast<std::size_t>(d)];
    if (*std::max_element(c.begin(), c.end()) == size) continue;  // one bucket: nothing to do
    std::uint64_t offset = 0;
    for (auto& bucket : c) {
      const std::uint64_t n = bucket;
      bucket = offset;
      offset += n;
    }
    for (std::size_t k = 0; k < size; ++k) {
      const std::uint64_t to = c[(keys[k] >> (8 * d)) & 0xff]++;
      keys_tmp[to] = keys[k];
      index_tmp[to] = index[k];
    }
    keys.swap(keys_tmp);
    index.swap(index_tmp);
  }
  keys_tmp = {};
  index_tmp = {};
  std::vector<std::uint32_t> ranks(size);
  std::size_t start = 0;
  while (start < size) {
    std::size_t end = start + 1;
    while (end < size && keys[end] == keys[start]) ++end;
    const auto doubled = static_cast<std::uint32_t>(start + end + 1);
    for (std::size_t k = start; k < end; ++k) ranks[index[k]] = doubled;
    start = end;
  }
  return ranks;
}

/// Pearson r of two equally long arrays of any arithmetic type with the given means: centred sums
/// over blocks of 4096 (in parallel), each set of block sums added pairwise; NaN for a constant array.
template <typename T>
double centred_pearson(const T* a, const T* b, std::int64_t n, double mean_a, double mean_b) {
  constexpr std::int64_t block = 4096;
  const std::int64_t blocks = (n + block - 1) / block;
  std::vector<double> sab(static_cast<std::size_t>(blocks)), saa(sab.size()), sbb(sab.size());
  rsa_detail::parallel_for(blocks, 0, [&](std::int64_t k) {
    double ab = 0, aa = 0, bb = 0;
    for (std::int64_t i = k * block; i < std::min(n, (k + 1) * block); ++i) {
      const double da = static_cast<double>(a[i]) - mean_a, db = static_cast<double>(b[i]) - mean_b;
      ab += da * db;
      aa += da * da;
      bb += db * db;
    }
    sab[static_cast<std::size_t>(k)] = ab;
    saa[static_cast<std::size_t>(k)] = aa;
    sbb[static_cast<std::size_t>(k)] = bb;
  });
  const double norm_a = std::sqrt(rsa_detail::pairwise_sum(saa.data(), blocks));
  const double norm_b = std::sqrt(rsa_detail::pairwise_sum(sbb.data(), blocks));
  if (norm_a == 0 || norm_b == 0) return kNaN;
  return std::clamp(rsa_detail::pairwise_sum(sab.data(), blocks) / norm_a / norm_b, -1.0, 1.0);
}

/// Pearson r (as `pearson`) of two equally long arrays of any arithmetic type.
template <typename T>
double pearson_of(const T* a, const T* b, std::int64_t n) {
  double sum_a = 0, sum_b = 0;  // exact for integer ranks while the sums stay below 2^53
  for (std::int64_t i = 0; i < n; ++i) {
    sum_a += static_cast<double>(a[i]);
    sum_b += static_cast<double>(b[i]);
  }
  return centred_pearson(a, b, n, sum_a / static_cast<double>(n), sum_b / static_cast<double>(n));
}

/// Spearman without NaN by radix ranks, reading the values through `fill_a`/`fill_b` (which write
/// sort keys): peak memory 24 bytes per pair while sorting + 8 for the two rank arrays.
template <typename FillA, typename FillB>
double spearman_radix(std::int64_t m, const FillA& fill_a, const FillB& fill_b) {
  const std::vector<std::uint32_t> ra = doubled_ranks(m, fill_a);
  const std::vector<std::uint32_t> rb = doubled_ranks(m, fill_b);
  return pearson_of(ra.data(), rb.data(), m);
}

/// Calls f(k, rdm(i, j)) for the strict upper triangle in scipy squareform order k, in 64-row
/// blocks (contiguous column reads), on all threads.
template <typename F>
void for_each_upper(const Eigen::Ref<const RdmMatrix>& rdm, const F& f) {
  const std::int64_t n = rdm.rows();
  constexpr std::int64_t block = 64;
  rsa_detail::parallel_for((n + block - 1) / block, 0, [&](std::int64_t b) {
    const std::int64_t i0 = b * block, i1 = std::min(n, i0 + block);
    for (std::int64_t j = i0 + 1; j < n; ++j) {
      for (std::int64_t i = i0; i < std::min(i1, j); ++i) f(i * n - i * (i + 1) / 2 + (j - i - 1), rdm(i, j));
    }
  });
}

/// Largest number of pairs the radix Spearman handles (doubled ranks fit 32 bits).
constexpr std::int64_t kRadixMaxPairs = (std::int64_t{1} << 31) - 2;

}  // namespace

namespace rsa_detail {

double pairwise_sum(const double* values, std::int64_t n) {
  if (n <= 128) {
    double sum = 0;
    for (std::int64_t k = 0; k < n; ++k) sum += values[k];
    return sum;
  }
  const std::int64_t half = (n / 2) & ~std::int64_t{7};
  return pairwise_sum(values, half) + pairwise_sum(values + half, n - half);
}

const Blas& blas() {
  static const Blas instance = [] {
    Blas b;
    const char* env = std::getenv("THINGSVISION_BLAS");
    if (env && std::string(env) == "0") return b;
    void* handle = dlopen("libblas.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!handle) return b;
    // only an optimised BLAS beats Eigen's own GEMM; the reference BLAS does not
    using ConfigFn = char* (*)();
    auto openblas_config = reinterpret_cast<ConfigFn>(dlsym(handle, "openblas_get_config"));
    auto blis_version = reinterpret_cast<const char* (*)()>(dlsym(handle, "bli_info_get_version_str"));
    if (openblas_config) b.name = openblas_config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
    else if (blis_version) b.name = std::string("BLIS ") + blis_version();
    b.dsyrk = reinterpret_cast<Blas::SyrkFn>(dlsym(handle, "cblas_dsyrk"));
    b.dgemm = reinterpret_cast<Blas::GemmFn>(dlsym(handle, "cblas_dgemm"));
    b.set_threads = reinterpret_cast<void (*)(int)>(dlsym(handle, "openblas_set_num_threads"));
    b.get_threads = reinterpret_cast<int (*)()>(dlsym(handle, "openblas_get_num_threads"));
    if (b.name.empty() || !b.dsyrk || !b.dgemm) {
      dlclose(handle);
      return Blas{};
    }
    return b;  // the library stays loaded for the life of the process
  }();
  return instance;
}

BlasThreads::BlasThreads(int num_threads) {
  const Blas& b = blas();
  if (num_threads > 0 && b.set_threads && b.get_threads) {
    previous_ = b.get_threads();
    b.set_threads(num_threads);
  }
}

BlasThreads::~BlasThreads() {
  if (previous_ > 0) blas().set_threads(previous_);
}

void gram_matrix(const FeatureMatrixD& rows, RdmMatrix& gram, int num_threads) {
  const std::int64_t n = rows.rows();
  gram.resize(n, n);
  const Blas& b = blas();
  if (b.dsyrk && n <= std::numeric_limits<int>::max() && rows.cols() <= std::numeric_limits<int>::max()) {
    // rows (N×D row-major) is a column-major D×N matrix A; gram = Aᵀ A, upper triangle
    const BlasThreads threads(num_threads);
    b.dsyrk(kCblasColMajor, kCblasUpper, kCblasTrans, static_cast<int>(n), static_cast<int>(rows.cols()), 1.0,
            rows.data(), static_cast<int>(rows.cols()), 0.0, gram.data(), static_cast<int>(n));
  } else {
    const TileGrid grid(n, kGramBlock);
    parallel_for(static_cast<std::int64_t>(grid.tiles.size()), num_threads, [&](std::int64_t t) {
      const auto [bi, bj] = grid.tiles[static_cast<std::size_t>(t)];
      const std::int64_t i0 = grid.begin(bi), j0 = grid.begin(bj), ni = grid.size(bi), nj = grid.size(bj);
      gram.block(i0, j0, ni, nj).noalias() = rows.middleRows(i0, ni) * rows.middleRows(j0, nj).transpose();
    });
  }
  mirror_upper_to_lower(gram, num_threads);
}

void mirror_upper_to_lower(RdmMatrix& m, int num_threads) {
  const std::int64_t n = m.rows();
  constexpr std::int64_t block = 64;
  const TileGrid grid(n, block);
  parallel_for(static_cast<std::int64_t>(grid.tiles.size()), num_threads, [&](std::int64_t t) {
    const auto [bi, bj] = grid.tiles[static_cast<std::size_t>(t)];
    const std::int64_t i0 = grid.begin(bi), j0 = grid.begin(bj), ni = grid.size(bi), nj = grid.size(bj);
    for (std::int64_t i = i0; i < i0 + ni; ++i) {
      for (std::int64_t j = std::max(j0, i + 1); j < j0 + nj; ++j) m(j, i) = m(i, j);
    }
  });
}

template <typename Scalar>
RdmMatrix squared_distances(const Eigen::Ref<const RowMatrix<Scalar>>& x, int num_threads) {
  const std::int64_t n = x.rows(), d = x.cols();
  FeatureMatrixD rows = to_double<Scalar>(x, nullptr, true, num_threads);
  const Eigen::VectorXd norms = rows.rowwise().squaredNorm();
  RdmMatrix rdm;
  gram_matrix(rows, rdm, num_threads);
  rows.resize(0, 0);
  parallel_for(n, num_threads, [&](std::int64_t j) {
    double* column = rdm.col(j).data();
    for (std::int64_t i = 0; i < j; ++i) {
      const double scale = norms[i] + norms[j];
      double d2 = scale - 2.0 * column[i];
      if (d2 < kRecomputeFraction * scale) d2 = direct_squared_distance(x.row(i).data(), x.row(j).data(), d);
      column[i] = d2;
    }
    column[j] = 0.0;
  });
  mirror_upper_to_lower(rdm, num_threads);
  return rdm;
}

template RdmMatrix squared_distances<float>(const Eigen::Ref<const RowMatrix<float>>&, int);
template RdmMatrix squared_distances<double>(const Eigen::Ref<const RowMatrix<double>>&, int);

double pearson(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b) {
  // two passes as numpy/scipy (means, then centred sums), blocked sums for accuracy, no copies
  const std::int64_t n = a.size();
  const double mean_a = pairwise_sum(a.data(), n) / static_cast<double>(n);
  const double mean_b = pairwise_sum(b.data(), n) / static_cast<double>(n);
  return centred_pearson(a.data(), b.data(), n, mean_a, mean_b);
}

double cosine(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b) {
  const double norm_a = a.norm(), norm_b = b.norm();
  if (norm_a == 0 || norm_b == 0) return kNaN;
  return a.dot(b) / (norm_a * norm_b);
}

double correlate_owned(Eigen::VectorXd& a, Eigen::VectorXd& b, RdmCorrelation method) {
  if (a.size() < 2) return kNaN;
  switch (method) {
    case RdmCorrelation::pearson:
      return pearson(a, b);
    case RdmCorrelation::spearman:
      rank_in_place(a, 0);  // one after the other: peak memory = one set of sort items
      rank_in_place(b, 0);
      return pearson(a, b);
    case RdmCorrelation::kendall:
      return kendall_tau_b(a, b);
    case RdmCorrelation::cosine:
      return cosine(a, b);
  }
  return kNaN;
}

double correlate_valid(const Eigen::Ref<const Eigen::VectorXd>& a, const Eigen::Ref<const Eigen::VectorXd>& b,
                       RdmCorrelation method) {
  if (method == RdmCorrelation::spearman) {
    Eigen::VectorXd x = a, y = b;
    return correlate_owned(x, y, method);
  }
  if (a.size() < 2) return kNaN;
  if (method == RdmCorrelation::pearson) return pearson(a, b);
  if (method == RdmCorrelation::kendall) return kendall_tau_b(a, b);
  return cosine(a, b);
}

}  // namespace rsa_detail

RdmMethod parse_rdm_method(std::string_view text) {
  if (text == "correlation") return RdmMethod::correlation;
  if (text == "cosine") return RdmMethod::cosine;
  if (text == "euclidean") return RdmMethod::euclidean;
  if (text == "gaussian") return RdmMethod::gaussian;
  if (text == "sqeuclidean") return RdmMethod::sqeuclidean;
  throw Error(ErrorKind::usage,
              fmt::format("unknown RDM method '{}'; expected correlation, cosine, euclidean, gaussian "
                          "or sqeuclidean",
                          text));
}

const char* to_string(RdmMethod method) noexcept {
  switch (method) {
    case RdmMethod::correlation: return "correlation";
    case RdmMethod::cosine: return "cosine";
    case RdmMethod::euclidean: return "euclidean";
    case RdmMethod::gaussian: return "gaussian";
    case RdmMethod::sqeuclidean: return "sqeuclidean";
  }
  return "?";
}

RdmCorrelation parse_rdm_correlation(std::string_view text) {
  if (text == "pearson") return RdmCorrelation::pearson;
  if (text == "spearman") return RdmCorrelation::spearman;
  if (text == "kendall") return RdmCorrelation::kendall;
  if (text == "cosine") return RdmCorrelation::cosine;
  throw Error(ErrorKind::usage,
              fmt::format("unknown RDM correlation '{}'; expected pearson, spearman, kendall or cosine", text));
}

const char* to_string(RdmCorrelation method) noexcept {
  switch (method) {
    case RdmCorrelation::pearson: return "pearson";
    case RdmCorrelation::spearman: return "spearman";
    case RdmCorrelation::kendall: return "kendall";
    case RdmCorrelation::cosine: return "cosine";
  }
  return "?";
}

std::string gemm_backend() {
  const auto& b = rsa_detail::blas();
  return b.dsyrk ? b.name : std::string("Eigen ") + std::to_string(EIGEN_WORLD_VERSION) + "." +
                                std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION);
}

RdmMatrix compute_rdm(const Eigen::Ref<const FeatureMatrix>& features, RdmMethod method, int num_threads) {
  return compute_rdm_impl<float>(features, method, num_threads);
}

RdmMatrix compute_rdm(const Eigen::Ref<const FeatureMatrixD>& features, RdmMethod method, int num_threads) {
  return compute_rdm_impl<double>(features, method, num_threads);
}

Eigen::VectorXd strict_upper_triangle(const Eigen::Ref<const RdmMatrix>& rdm) {
  const std::int64_t n = rdm.rows();
  if (rdm.cols() != n) {
    throw Error(ErrorKind::usage, fmt::format("strict_upper_triangle: the RDM is not square ({}×{})",
                                              rdm.rows(), rdm.cols()));
  }
  Eigen::VectorXd out(n > 1 ? n * (n - 1) / 2 : 0);
  // blocks of 64 rows: each column segment is read contiguously, 64 output runs are written
  constexpr std::int64_t block = 64;
  rsa_detail::parallel_for((n + block - 1) / block, 0, [&](std::int64_t b) {
    const std::int64_t i0 = b * block, i1 = std::min(n, i0 + block);
    for (std::int64_t j = i0 + 1; j < n; ++j) {
      for (std::int64_t i = i0; i < std::min(i1, j); ++i) out[i * n - i * (i + 1) / 2 + (j - i - 1)] = rdm(i, j);
    }
  });
  return out;
}

std::int64_t num_conditions_from_pairs(std::int64_t num_pairs) {
  const auto n = static_cast<std::int64_t>(std::llround((1.0 + std::sqrt(1.0 + 8.0 * num_pairs)) / 2.0));
  if (num_pairs < 0 || n * (n - 1) / 2 != num_pairs) {
    throw Error(ErrorKind::usage,
                fmt::format("{} dissimilarities are not the strict upper triangle of an RDM (not N(N-1)/2)",
                            num_pairs));
  }
  return n;
}

RdmMatrix square_rdm(const Eigen::Ref<const Eigen::VectorXd>& dissimilarities) {
  const std::int64_t n = num_conditions_from_pairs(dissimilarities.size());
  RdmMatrix rdm = RdmMatrix::Zero(n, n);
  std::int64_t k = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = i + 1; j < n; ++j) {
      rdm(i, j) = rdm(j, i) = dissimilarities[k++];
    }
  }
  return rdm;
}

double correlate_dissimilarities(const Eigen::Ref<const Eigen::VectorXd>& a,
                                 const Eigen::Ref<const Eigen::VectorXd>& b, RdmCorrelation method) {
  if (a.size() != b.size()) {
    throw Error(ErrorKind::usage,
                fmt::format("correlate_rdms: the RDMs differ in size ({} and {} dissimilarities)", a.size(),
                            b.size()));
  }
  const std::int64_t n = num_conditions_from_pairs(a.size());
  if (n < 3) {
    throw Error(ErrorKind::usage,
                fmt::format("correlate_rdms: needs at least 3 conditions, got N = {}", n));
  }
  if (method == RdmCorrelation::spearman && a.size() <= kRadixMaxPairs && !a.hasNaN() && !b.hasNaN()) {
    auto keys_of = [](const Eigen::Ref<const Eigen::VectorXd>& v) {
      return [&v](std::uint64_t* keys) {
        for (Eigen::Index k = 0; k < v.size(); ++k) keys[k] = sort_key(v[k]);
      };
    };
    return spearman_radix(a.size(), keys_of(a), keys_of(b));
  }
  Eigen::VectorXd x = a, y = b;
  compact_nan_pairs(x, y);
  return rsa_detail::correlate_owned(x, y, method);
}

double correlate_rdms(const Eigen::Ref<const RdmMatrix>& a, const Eigen::Ref<const RdmMatrix>& b,
                      RdmCorrelation method) {
  if (a.rows() != a.cols() || b.rows() != b.cols() || a.rows() != b.rows()) {
    throw Error(ErrorKind::usage,
                fmt::format("correlate_rdms: the RDMs must be square and of the same size, got {}×{} and {}×{}",
                            a.rows(), a.cols(), b.rows(), b.cols()));
  }
  if (a.rows() < 3) {
    throw Error(ErrorKind::usage,
                fmt::format("correlate_rdms: needs at least 3 conditions, got N = {}", a.rows()));
  }
  const std::int64_t pairs = a.rows() * (a.rows() - 1) / 2;
  if (method == RdmCorrelation::spearman && pairs <= kRadixMaxPairs && !a.hasNaN() && !b.hasNaN()) {
    auto keys_of = [](const Eigen::Ref<const RdmMatrix>& m) {
      return [&m](std::uint64_t* keys) { for_each_upper(m, [&](std::int64_t k, double v) { keys[k] = sort_key(v); }); };
    };
    return spearman_radix(pairs, keys_of(a), keys_of(b));
  }
  Eigen::VectorXd x = strict_upper_triangle(a), y = strict_upper_triangle(b);
  compact_nan_pairs(x, y);
  return rsa_detail::correlate_owned(x, y, method);
}

Eigen::VectorXd average_ranks(const Eigen::Ref<const Eigen::VectorXd>& values) {
  Eigen::VectorXd ranks = values;
  rank_in_place(ranks, 0);
  return ranks;
}

void center_features(Eigen::Ref<FeatureMatrix> features) { center_impl(features); }
void center_features(Eigen::Ref<FeatureMatrixD> features) { center_impl(features); }
void normalize_features(Eigen::Ref<FeatureMatrix> features) { normalize_impl(features); }
void normalize_features(Eigen::Ref<FeatureMatrixD> features) { normalize_impl(features); }

}  // namespace thingsvision
