// rsa.hpp — RDMs (one GEMM in double), RDM correlations, CKA, permutation test, bootstrap, RDM files.
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace thingsvision {

/// Features, one row per condition (image), one column per feature: numpy's C order.
using FeatureMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// The same in double (features read back from files arrive as float64).
using FeatureMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A square, symmetric N×N dissimilarity matrix with a zero diagonal, float64.
using RdmMatrix = Eigen::MatrixXd;

/// How compute_rdm measures the dissimilarity of two rows; names as THINGSvision / rsatoolbox.
enum class RdmMethod {
  correlation,  ///< 1 − Pearson r of the two rows (each row centred), r clipped to [−1, 1]
  cosine,       ///< 1 − cosine similarity, clipped to [−1, 1]
  euclidean,    ///< ‖xi − xj‖, not squared (scipy pdist "euclidean", THINGSvision)
  gaussian,     ///< 1 − exp(−‖xi − xj‖² / mean(D)), mean over all n² squared distances
  sqeuclidean,  ///< ‖xi − xj‖² / number of features (rsatoolbox's "euclidean")
};
/// Parses "correlation", "cosine", "euclidean", "gaussian", "sqeuclidean"; Error(usage) otherwise.
RdmMethod parse_rdm_method(std::string_view text);
const char* to_string(RdmMethod method) noexcept;

/// How correlate_rdms compares two RDMs' strict upper triangles.
enum class RdmCorrelation {
  pearson,   ///< scipy.stats.pearsonr (THINGSvision's default)
  spearman,  ///< scipy.stats.spearmanr: Pearson on average ranks
  kendall,   ///< scipy.stats.kendalltau, tau-b
  cosine,    ///< rsatoolbox's default: cosine of the two vectors, not centred
};
/// Parses "pearson", "spearman", "kendall", "cosine"; Error(usage) otherwise.
RdmCorrelation parse_rdm_correlation(std::string_view text);
const char* to_string(RdmCorrelation method) noexcept;

/// The RDM of `features` (N×D): all pairwise dissimilarities through one Gram matrix computed in
/// double on all cores (`num_threads` = 0). Pairs whose Gram-derived distance is tiny are recomputed
/// from the row differences; identical rows give exactly 0; the diagonal is 0. For `correlation`
/// (`cosine`) a row of zero variance (norm) has NaN dissimilarities to every other row.
/// Throws Error(usage) for an empty matrix. Memory: the N×N result plus an N×D double copy.
/// **Example**: `RdmMatrix rdm = compute_rdm(features, RdmMethod::correlation);`
RdmMatrix compute_rdm(const Eigen::Ref<const FeatureMatrix>& features, RdmMethod method,
                      int num_threads = 0);
/// compute_rdm for float64 features.
RdmMatrix compute_rdm(const Eigen::Ref<const FeatureMatrixD>& features, RdmMethod method,
                      int num_threads = 0);

/// The GEMM behind compute_rdm and cka: the system's optimised BLAS found at run time through
/// libblas.so.3 ("OpenBLAS …", "BLIS …"; THINGSVISION_BLAS=0 disables it) or "Eigen 3.4.0".
std::string gemm_backend();

/// The strict upper triangle (k = 1) of a square RDM, row by row: scipy squareform's order.
/// Throws Error(usage) if `rdm` is not square.
Eigen::VectorXd strict_upper_triangle(const Eigen::Ref<const RdmMatrix>& rdm);
/// The square RDM of a strict-upper-triangle vector (zero diagonal); Error(usage) if its length is
/// not N(N−1)/2.
RdmMatrix square_rdm(const Eigen::Ref<const Eigen::VectorXd>& dissimilarities);
/// N for a vector of N(N−1)/2 dissimilarities; Error(usage) naming the length if there is no such N.
std::int64_t num_conditions_from_pairs(std::int64_t num_pairs);

/// Correlation of the strict upper triangles of two N×N RDMs (N ≥ 3), NaN-aware: pairs where
/// either RDM is NaN are dropped. Returns NaN when a remaining vector is constant (as scipy).
/// Throws Error(usage) if the shapes differ or are not square, or naming N if N < 3.
double correlate_rdms(const Eigen::Ref<const RdmMatrix>& a, const Eigen::Ref<const RdmMatrix>& b,
                      RdmCorrelation method);
/// correlate_rdms on two strict-upper-triangle vectors of the same length N(N−1)/2.
double correlate_dissimilarities(const Eigen::Ref<const Eigen::VectorXd>& a,
                                 const Eigen::Ref<const Eigen::VectorXd>& b,
                                 RdmCorrelation method);
/// Ranks of `values` from 1, ties getting their average rank: scipy.stats.rankdata(method="average").
Eigen::VectorXd average_ranks(const Eigen::Ref<const Eigen::VectorXd>& values);

/// THINGSvision's center_features: subtracts each column's mean (in double), in place.
void center_features(Eigen::Ref<FeatureMatrix> features);
void center_features(Eigen::Ref<FeatureMatrixD> features);
/// THINGSvision's normalize_features: scales each row to unit L2 norm, in place. An all-zero row
/// stays zero (THINGSvision would give NaN).
void normalize_features(Eigen::Ref<FeatureMatrix> features);
void normalize_features(Eigen::Ref<FeatureMatrixD> features);

/// CKA kernels.
enum class CkaKernel {
  linear,  ///< K = X Xᵀ
  rbf,     ///< K = exp(−‖xi − xj‖² / (2σ²))
};
/// Parses "linear" or "rbf"; Error(usage) otherwise.
CkaKernel parse_cka_kernel(std::string_view text);
const char* to_string(CkaKernel kernel) noexcept;

/// Options of cka(); the defaults are THINGSvision's get_cka defaults.
struct CkaOptions {
  CkaKernel kernel = CkaKernel::linear;
  /// Székely–Rizzo U-statistic HSIC (needs N ≥ 4) instead of the biased HKH form.
  bool unbiased = false;
  /// RBF bandwidth σ; ignored for linear.
  double sigma = 1.0;
  /// RBF: σ = sqrt(median of the non-zero squared distances), per matrix, instead of `sigma`.
  bool median_sigma = false;
  int num_threads = 0;
};

/// Kornblith's CKA between `x` (N×Dx) and `y` (N×Dy): HSIC(K,L)/sqrt(HSIC(K,K)·HSIC(L,L)), each
/// Gram matrix built once. Linear biased CKA streams Gram tiles (no N×N matrix); the other variants
/// keep two N×N matrices. Throws Error(usage) if the row counts differ, N < 2, or N < 4 when unbiased.
double cka(const Eigen::Ref<const FeatureMatrix>& x, const Eigen::Ref<const FeatureMatrix>& y,
           const CkaOptions& options = {});
double cka(const Eigen::Ref<const FeatureMatrixD>& x, const Eigen::Ref<const FeatureMatrixD>& y,
           const CkaOptions& options = {});

/// Result of permutation_test.
struct PermutationResult {
  double observed = 0;  ///< correlate_rdms(a, b)
  /// (1 + #{null ≥ observed}) / (1 + permutations): one-sided, the RDMs are more alike than chance.
  double p_value = 1;
  std::vector<double> null_distribution;  ///< one correlation per permutation, in order
};
/// Permutation test of correlate_rdms: the conditions of `b` (rows and columns together) are
/// shuffled `permutations` times with a seeded generator (same seed, same result on every platform).
/// Throws as correlate_rdms, or Error(usage) if permutations < 1.
PermutationResult permutation_test(const Eigen::Ref<const RdmMatrix>& a,
                                   const Eigen::Ref<const RdmMatrix>& b, RdmCorrelation method,
                                   int permutations, std::uint64_t seed = 0);

/// Result of bootstrap_ci.
struct BootstrapResult {
  double observed = 0;      ///< correlate_rdms(a, b) on all conditions
  double lower = 0;         ///< percentile (1 − level)/2 of the bootstrap distribution
  double upper = 0;         ///< percentile (1 + level)/2 (numpy's linear interpolation)
  std::vector<double> samples;  ///< the valid (non-NaN) bootstrap correlations
};
/// Bootstrap confidence interval of correlate_rdms over conditions: N conditions are drawn with
/// replacement (seeded) `samples` times; pairs of a condition with its own duplicate are dropped
/// (rsatoolbox sets them NaN); samples with fewer than 3 distinct conditions are skipped.
/// Throws as correlate_rdms, or Error(usage) if samples < 1 or level is not in (0, 1).
BootstrapResult bootstrap_ci(const Eigen::Ref<const RdmMatrix>& a,
                             const Eigen::Ref<const RdmMatrix>& b, RdmCorrelation method,
                             int samples, double level = 0.95, std::uint64_t seed = 0);

/// Builds the RDMs held by an array read from a file (npy/mat/hdf5), float64 C order: a square
/// N×N matrix, a vector of N(N−1)/2 dissimilarities, K×N(N−1)/2 vectors (rsatoolbox), or K×N×N.
/// Throws Error(input) naming `source` if the shape fits none of these.
std::vector<RdmMatrix> rdms_from_array(const std::vector<std::int64_t>& shape,
                                       const std::vector<double>& values, const std::string& source);

/// Writes `rdm` as a square N×N float64 .npy file (written to a temporary name, then renamed).
/// Throws Error(io) naming the path on failure.
void write_rdm_npy(const std::filesystem::path& path, const Eigen::Ref<const RdmMatrix>& rdm);

/// Writes RDMs in rsatoolbox's HDF5 layout, read by rsatoolbox.rdm.load_rdm: dataset
/// `dissimilarities` (K × N(N−1)/2 float64), attribute `dissimilarity_measure`, groups
/// `descriptors`, `rdm_descriptors` (`index`) and `pattern_descriptors` (`index`, and
/// `conditions` as fixed-length bytes when given). Throws Error(usage) for mismatched sizes,
/// Error(io) naming the path on failure.
void write_rdms_hdf5(const std::filesystem::path& path, const std::vector<RdmMatrix>& rdms,
                     const std::string& dissimilarity_measure,
                     const std::vector<std::string>& conditions = {});

}  // namespace thingsvision
