// cka.cpp — Kornblith's linear/RBF CKA, biased (HKH) or unbiased (Székely–Rizzo), Grams built once.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "rsa/rsa_kernels.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rsa.hpp"

namespace thingsvision {

namespace {

template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr std::int64_t kTile = 256;
constexpr std::int64_t kBlasTile = 1024;

/// Column-centred double copy (= H X, so (HX)(HX)ᵀ = HKH for the linear kernel).
template <typename Scalar>
FeatureMatrixD centred_columns(const Eigen::Ref<const RowMatrix<Scalar>>& x) {
  FeatureMatrixD out = x.template cast<double>();
  Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(out.cols());
  for (Eigen::Index i = 0; i < out.rows(); ++i) mean += out.row(i);
  mean /= static_cast<double>(out.rows());
  for (Eigen::Index i = 0; i < out.rows(); ++i) out.row(i) -= mean;
  return out;
}

/// Linear biased CKA streamed over Gram tiles of the centred features: no N×N matrix is stored.
/// With an optimised BLAS the tiles are large and computed one after the other (BLAS threads);
/// without, small tiles run on std::threads with Eigen's GEMM.
double linear_biased_cka(const FeatureMatrixD& xc, const FeatureMatrixD& yc, int num_threads) {
  const rsa_detail::Blas& blas = rsa_detail::blas();
  const rsa_detail::TileGrid grid(xc.rows(), blas.dgemm ? kBlasTile : kTile);
  const auto num_tiles = static_cast<std::int64_t>(grid.tiles.size());
  std::vector<double> xy(num_tiles), xx(num_tiles), yy(num_tiles);
  auto tile = [&](std::int64_t t, Eigen::MatrixXd& k, Eigen::MatrixXd& l) {
    const auto [bi, bj] = grid.tiles[static_cast<std::size_t>(t)];
    const std::int64_t i0 = grid.begin(bi), j0 = grid.begin(bj), ni = grid.size(bi), nj = grid.size(bj);
    if (blas.dgemm) {
      k.resize(ni, nj);
      l.resize(ni, nj);
      // row-major X rows are column-major D×n blocks: K = Aiᵀ Aj
      blas.dgemm(rsa_detail::kCblasColMajor, rsa_detail::kCblasTrans, rsa_detail::kCblasNoTrans, static_cast<int>(ni),
                 static_cast<int>(nj), static_cast<int>(xc.cols()), 1.0, xc.row(i0).data(), static_cast<int>(xc.cols()),
                 xc.row(j0).data(), static_cast<int>(xc.cols()), 0.0, k.data(), static_cast<int>(ni));
      blas.dgemm(rsa_detail::kCblasColMajor, rsa_detail::kCblasTrans, rsa_detail::kCblasNoTrans, static_cast<int>(ni),
                 static_cast<int>(nj), static_cast<int>(yc.cols()), 1.0, yc.row(i0).data(), static_cast<int>(yc.cols()),
                 yc.row(j0).data(), static_cast<int>(yc.cols()), 0.0, l.data(), static_cast<int>(ni));
    } else {
      k.noalias() = xc.middleRows(i0, ni) * xc.middleRows(j0, nj).transpose();
      l.noalias() = yc.middleRows(i0, ni) * yc.middleRows(j0, nj).transpose();
    }
    const double weight = bi == bj ? 1.0 : 2.0;  // the lower triangle's tiles mirror these
    xy[t] = weight * k.cwiseProduct(l).sum();
    xx[t] = weight * k.squaredNorm();
    yy[t] = weight * l.squaredNorm();
  };
  if (blas.dgemm) {
    const rsa_detail::BlasThreads threads(num_threads);
    Eigen::MatrixXd k, l;
    for (std::int64_t t = 0; t < num_tiles; ++t) tile(t, k, l);
  } else {
    rsa_detail::parallel_for(num_tiles, num_threads, [&](std::int64_t t) {
      Eigen::MatrixXd k, l;
      tile(t, k, l);
    });
  }
  const double hxy = rsa_detail::pairwise_sum(xy.data(), num_tiles);
  const double hxx = rsa_detail::pairwise_sum(xx.data(), num_tiles);
  const double hyy = rsa_detail::pairwise_sum(yy.data(), num_tiles);
  return hxy / std::sqrt(hxx * hyy);
}

/// The kernel matrix of `x` (linear Gram or RBF), both triangles.
template <typename Scalar>
RdmMatrix kernel_matrix(const Eigen::Ref<const RowMatrix<Scalar>>& x, const CkaOptions& options,
                        const char* name) {
  RdmMatrix k;
  if (options.kernel == CkaKernel::linear) {
    const FeatureMatrixD rows = x.template cast<double>();
    rsa_detail::gram_matrix(rows, k, options.num_threads);
    return k;
  }
  k = rsa_detail::squared_distances<Scalar>(x, options.num_threads);
  double sigma = options.sigma;
  if (options.median_sigma) {
    // median of the non-zero squared distances of both triangles = that of the upper triangle
    std::vector<double> upper;
    upper.reserve(static_cast<std::size_t>(k.rows() * (k.rows() - 1) / 2));
    for (Eigen::Index j = 0; j < k.cols(); ++j)
      for (Eigen::Index i = 0; i < j; ++i)
        if (k(i, j) != 0) upper.push_back(k(i, j));
    if (upper.empty()) {
      throw Error(ErrorKind::usage,
                  fmt::format("cka: the median heuristic needs distinct rows, but all rows of {} are identical",
                              name));
    }
    const std::size_t m = upper.size(), half = m / 2;
    std::nth_element(upper.begin(), upper.begin() + static_cast<std::ptrdiff_t>(half), upper.end());
    double median = upper[half];
    if (m % 2 == 0) {
      median = 0.5 * (median + *std::max_element(upper.begin(), upper.begin() + static_cast<std::ptrdiff_t>(half)));
    }
    sigma = std::sqrt(median);
  }
  const double scale = 1.0 / (2.0 * sigma * sigma);
  k = (-k.array() * scale).exp().matrix();
  return k;
}

/// Per-row centring terms: biased m_i = mean_j K_ij (and the grand mean); unbiased (diagonal set
/// to 0 first) m_i = Σ_j K_ij/(n−2) − Σ m/(2(n−1)).
struct Centring {
  Eigen::VectorXd means;
  double grand = 0;
};

Centring centring(RdmMatrix& k, bool unbiased) {
  const Eigen::Index n = k.rows();
  Centring c;
  if (unbiased) k.diagonal().setZero();
  c.means.resize(n);
  for (Eigen::Index j = 0; j < n; ++j) c.means[j] = rsa_detail::pairwise_sum(k.col(j).data(), n);
  if (unbiased) {
    c.means /= static_cast<double>(n - 2);
    c.means.array() -= rsa_detail::pairwise_sum(c.means.data(), n) / (2.0 * static_cast<double>(n - 1));
  } else {
    c.means /= static_cast<double>(n);
    c.grand = rsa_detail::pairwise_sum(c.means.data(), n) / static_cast<double>(n);
  }
  return c;
}

double kernel_cka(RdmMatrix& k, RdmMatrix& l, bool unbiased, int num_threads) {
  const Eigen::Index n = k.rows();
  const Centring ck = centring(k, unbiased), cl = centring(l, unbiased);
  std::vector<double> xy(n), xx(n), yy(n);
  rsa_detail::parallel_for(n, num_threads, [&](std::int64_t j) {
    double sxy = 0, sxx = 0, syy = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      if (unbiased && i == j) continue;  // the centred diagonal is set to 0
      const double kc = k(i, j) - ck.means[i] - ck.means[j] + ck.grand;
      const double lc = l(i, j) - cl.means[i] - cl.means[j] + cl.grand;
      sxy += kc * lc;
      sxx += kc * kc;
      syy += lc * lc;
    }
    xy[j] = sxy;
    xx[j] = sxx;
    yy[j] = syy;
  });
  const double hxy = rsa_detail::pairwise_sum(xy.data(), n);
  const double hxx = rsa_detail::pairwise_sum(xx.data(), n);
  const double hyy = rsa_detail::pairwise_sum(yy.data(), n);
  return hxy / std::sqrt(hxx * hyy);
}

template <typename Scalar>
double cka_impl(const Eigen::Ref<const RowMatrix<Scalar>>& x, const Eigen::Ref<const RowMatrix<Scalar>>& y,
                const CkaOptions& options) {
  if (x.rows() != y.rows()) {
    throw Error(ErrorKind::usage,
                fmt::format("cka: X and Y must have the same number of rows (conditions), got {} and {}",
                            x.rows(), y.rows()));
  }
  const std::int64_t n = x.rows();
  if (x.cols() == 0 || y.cols() == 0) {
    throw Error(ErrorKind::usage, fmt::format("cka: X has {} and Y {} features; both need at least one",
                                              x.cols(), y.cols()));
  }
  if (options.unbiased && n < 4) {
    throw Error(ErrorKind::usage, fmt::format("cka: unbiased CKA needs at least 4 conditions, got N = {}", n));
  }
  if (n < 2) throw Error(ErrorKind::usage, fmt::format("cka: needs at least 2 conditions, got N = {}", n));
  if (options.kernel == CkaKernel::rbf && !options.median_sigma && !(options.sigma > 0)) {
    throw Error(ErrorKind::usage, fmt::format("cka: sigma must be positive, got {}", options.sigma));
  }
  if (options.kernel == CkaKernel::linear && !options.unbiased) {
    return linear_biased_cka(centred_columns<Scalar>(x), centred_columns<Scalar>(y), options.num_threads);
  }
  RdmMatrix k = kernel_matrix<Scalar>(x, options, "X");
  RdmMatrix l = kernel_matrix<Scalar>(y, options, "Y");
  return kernel_cka(k, l, options.unbiased, options.num_threads);
}

}  // namespace

CkaKernel parse_cka_kernel(std::string_view text) {
  if (text == "linear") return CkaKernel::linear;
  if (text == "rbf") return CkaKernel::rbf;
  throw Error(ErrorKind::usage, fmt::format("unknown CKA kernel '{}'; expected linear or rbf", text));
}

const char* to_string(CkaKernel kernel) noexcept {
  return kernel == CkaKernel::linear ? "linear" : "rbf";
}

double cka(const Eigen::Ref<const FeatureMatrix>& x, const Eigen::Ref<const FeatureMatrix>& y,
           const CkaOptions& options) {
  return cka_impl<float>(x, y, options);
}

double cka(const Eigen::Ref<const FeatureMatrixD>& x, const Eigen::Ref<const FeatureMatrixD>& y,
           const CkaOptions& options) {
  return cka_impl<double>(x, y, options);
}

}  // namespace thingsvision
