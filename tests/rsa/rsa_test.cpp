// rsa_test.cpp — compute_rdm, correlate_rdms, ranks, feature scaling, statistics and RDM files against
// numpy/scipy references written by tests/reference/rsa_reference.py.
#include <gmock/gmock.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rsa_test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rsa.hpp"

using namespace thingsvision;
using tv_test::expect_error;
using ::testing::HasSubstr;
using tv_test::flat;

namespace {

const char* const kDatasets[] = {"random", "relu", "ties", "small", "small4", "near", "offset"};
const RdmMethod kMethods[] = {RdmMethod::correlation, RdmMethod::cosine, RdmMethod::euclidean,
                              RdmMethod::gaussian, RdmMethod::sqeuclidean};
const RdmCorrelation kCorrelations[] = {RdmCorrelation::pearson, RdmCorrelation::spearman,
                                        RdmCorrelation::kendall, RdmCorrelation::cosine};

/// Relative agreement |got − ref| ≤ tol·|ref| (plus a floor for references that are exactly 0).
::testing::AssertionResult near_relative(double ref, double got, double tol, const std::string& label) {
  if (std::isnan(ref) && std::isnan(got)) return ::testing::AssertionSuccess();
  if (std::abs(got - ref) <= tol * std::abs(ref) + 1e-15) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << label << ": got " << got << ", reference " << ref << " (diff "
                                       << got - ref << ")";
}

}  // namespace

TEST(ComputeRdm, MatchesScipyPdistForEveryMethodAndDataset) {
  for (const char* name : kDatasets) {
    const FeatureMatrixD x = tv_test::read_features_d(std::string(name) + "_x.npy");
    for (const RdmMethod method : kMethods) {
      const RdmMatrix ref = tv_test::read_rdm(std::string(name) + "_" + to_string(method) + ".npy");
      const RdmMatrix got = compute_rdm(x, method);
      const std::string label = std::string(name) + " " + to_string(method);
      EXPECT_TRUE(tv_test::expect_close(flat(ref), flat(got), {1e-8, 0.0}, label));
      EXPECT_TRUE(got.isApprox(got.transpose(), 0.0) || got.hasNaN()) << label << " not symmetric";
      EXPECT_EQ(got.diagonal().cwiseAbs().maxCoeff(), 0.0) << label;
    }
  }
}

TEST(ComputeRdm, FloatInputGivesTheSameAsItsDoubleValues) {
  const FeatureMatrix xf = tv_test::read_features_f("relu_x.npy");  // stored as float32
  const FeatureMatrixD xd = xf.cast<double>();
  for (const RdmMethod method : kMethods) {
    const RdmMatrix ref = tv_test::read_rdm(std::string("relu_") + to_string(method) + ".npy");
    EXPECT_TRUE(tv_test::expect_close(flat(ref), flat(compute_rdm(xf, method)), {1e-8, 0.0}, to_string(method)));
    EXPECT_EQ(compute_rdm(xf, method), compute_rdm(xd, method)) << to_string(method);
  }
}

TEST(ComputeRdm, NearIdenticalRowsAreAccurateRelativeToTheirOwnSize) {
  // the Gram trick alone would leave errors ~1e-16·‖x‖² ≫ these tiny distances
  const FeatureMatrixD x = tv_test::read_features_d("near_x.npy");
  for (const RdmMethod method : {RdmMethod::euclidean, RdmMethod::sqeuclidean, RdmMethod::correlation}) {
    const RdmMatrix ref = tv_test::read_rdm(std::string("near_") + to_string(method) + ".npy");
    const RdmMatrix got = compute_rdm(x, method);
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      for (Eigen::Index j = 0; j < x.rows(); ++j)
        if (ref(i, j) > 0 && ref(i, j) < 1e-5 && method != RdmMethod::correlation) {
          ASSERT_TRUE(near_relative(ref(i, j), got(i, j), 1e-6, to_string(method))) << i << "," << j;
        }
  }
}

TEST(ComputeRdm, IdenticalRowsGiveExactlyZero) {
  const FeatureMatrixD x = tv_test::read_features_d("ties_x.npy");  // rows 5 = 0, 7 = 20 = 1
  for (const RdmMethod method : kMethods) {
    const RdmMatrix got = compute_rdm(x, method, 2);
    EXPECT_EQ(got(0, 5), 0.0) << to_string(method);
    EXPECT_EQ(got(5, 0), 0.0) << to_string(method);
    EXPECT_EQ(got(1, 7), 0.0) << to_string(method);
    EXPECT_EQ(got(7, 20), 0.0) << to_string(method);
  }
}

TEST(ComputeRdm, ZeroVarianceRowGivesNanForCorrelationOnly) {
  const FeatureMatrixD x = tv_test::read_features_d("ties_x.npy");  // row 10 is constant
  const RdmMatrix corr = compute_rdm(x, RdmMethod::correlation);
  for (Eigen::Index j = 0; j < x.rows(); ++j) {
    if (j == 10) continue;
    EXPECT_TRUE(std::isnan(corr(10, j)) && std::isnan(corr(j, 10))) << j;
  }
  EXPECT_EQ(corr(10, 10), 0.0);
  EXPECT_FALSE(compute_rdm(x, RdmMethod::cosine).hasNaN());
  FeatureMatrixD zero = x;
  zero.row(3).setZero();
  EXPECT_TRUE(std::isnan(compute_rdm(zero, RdmMethod::cosine)(3, 4)));
}

TEST(ComputeRdm, ThreadCountDoesNotChangeTheResult) {
  const FeatureMatrixD x = FeatureMatrixD::Random(600, 70);  // several Gram tiles
  for (const RdmMethod method : kMethods) {
    EXPECT_EQ(compute_rdm(x, method, 1), compute_rdm(x, method, 3)) << to_string(method);
  }
}

TEST(ComputeRdm, NamesItsGemmBackend) {
  const std::string backend = gemm_backend();
  const char* env = std::getenv("THINGSVISION_BLAS");
  if (env && std::string(env) == "0") {
    EXPECT_EQ(backend.rfind("Eigen ", 0), 0u) << backend;
  }
  EXPECT_FALSE(backend.empty());
  RecordProperty("gemm_backend", backend);
}

TEST(ComputeRdm, EmptyInputIsAUsageError) {
  expect_error([] { compute_rdm(FeatureMatrixD(0, 4), RdmMethod::cosine); }, ErrorKind::usage,
               "compute_rdm: the feature matrix is empty (N = 0, D = 4)");
}

TEST(ComputeRdm, ParsesMethodNamesAndRejectsOthers) {
  for (const RdmMethod method : kMethods) EXPECT_EQ(parse_rdm_method(to_string(method)), method);
  expect_error([] { parse_rdm_method("pearson"); }, ErrorKind::usage,
               "unknown RDM method 'pearson'; expected correlation, cosine, euclidean, gaussian or sqeuclidean");
}

TEST(CorrelateRdms, MatchesScipyForAllMethodsIncludingTiesNanAndSmallestN) {
  const auto scalars = tv_test::read_scalars();
  std::vector<std::string> pairs(std::begin(kDatasets), std::end(kDatasets));
  pairs.emplace_back("categorical");
  for (const auto& name : pairs) {
    RdmMatrix a, b;
    if (name == "categorical") {
      a = tv_test::read_rdm("categorical_a.npy");
      b = tv_test::read_rdm("categorical_b.npy");
    } else {
      a = tv_test::read_rdm(name + "_correlation.npy");
      b = tv_test::read_rdm(name + "_euclidean.npy");
    }
    for (const RdmCorrelation method : kCorrelations) {
      const std::string key = "corr_" + name + "_" + to_string(method);
      ASSERT_TRUE(scalars.count(key)) << key;
      EXPECT_TRUE(near_relative(scalars.at(key), correlate_rdms(a, b, method), 1e-9, key));
      EXPECT_TRUE(near_relative(scalars.at(key),
                                correlate_dissimilarities(strict_upper_triangle(a), strict_upper_triangle(b), method),
                                1e-9, key + " (vectors)"));
    }
  }
}

TEST(CorrelateRdms, RadixSpearmanTreatsSignedZerosAndNegativesAsScipyDoes) {
  // the NaN-free path ranks by radix-sorted bit keys; it must agree with comparison-sorted ranks
  std::vector<double> a{0.0, -0.0, 1.5, -2.0, 1.5, -0.0, 3.0, -1e-300, 1e300, 0.25};
  std::vector<double> b{1.0, 2.0, 2.0, -3.0, 0.0, 5.0, -0.0, 7.0, 1.0, 0.0};
  const Eigen::Map<const Eigen::VectorXd> va(a.data(), 10), vb(b.data(), 10);
  const Eigen::VectorXd ra = average_ranks(va), rb = average_ranks(vb);
  EXPECT_EQ(ra[0], ra[1]);  // 0.0 and -0.0 tie
  EXPECT_EQ(ra[0], ra[5]);
  const double expected = correlate_dissimilarities(ra, rb, RdmCorrelation::pearson);
  EXPECT_NEAR(correlate_dissimilarities(va, vb, RdmCorrelation::spearman), expected, 1e-15);
  Eigen::VectorXd vb_nan = vb;  // a NaN sends it down the comparison-sort path
  vb_nan[9] = std::nan("");
  const Eigen::VectorXd ra9 = average_ranks(va.head(9)), rb9 = average_ranks(vb.head(9));
  const Eigen::VectorXd ca = ra9.array() - ra9.mean(), cb = rb9.array() - rb9.mean();
  EXPECT_NEAR(correlate_dissimilarities(va, vb_nan, RdmCorrelation::spearman), ca.dot(cb) / ca.norm() / cb.norm(),
              1e-15);
}

TEST(CorrelateRdms, FewerThanThreeConditionsIsAnErrorNamingN) {
  const RdmMatrix two = RdmMatrix::Ones(2, 2) - RdmMatrix::Identity(2, 2);
  expect_error([&] { correlate_rdms(two, two, RdmCorrelation::pearson); }, ErrorKind::usage,
               "correlate_rdms: needs at least 3 conditions, got N = 2");
  const Eigen::VectorXd one = Eigen::VectorXd::Ones(1);
  expect_error([&] { correlate_dissimilarities(one, one, RdmCorrelation::spearman); }, ErrorKind::usage,
               "correlate_rdms: needs at least 3 conditions, got N = 2");
  expect_error([&] { correlate_rdms(RdmMatrix::Zero(3, 3), RdmMatrix::Zero(4, 4), RdmCorrelation::pearson); },
               ErrorKind::usage, "correlate_rdms: the RDMs must be square and of the same size, got 3×3 and 4×4");
  expect_error([&] { correlate_dissimilarities(Eigen::VectorXd::Ones(4), Eigen::VectorXd::Ones(4), RdmCorrelation::pearson); },
               ErrorKind::usage, "4 dissimilarities are not the strict upper triangle of an RDM (not N(N-1)/2)");
}

TEST(CorrelateRdms, ConstantRdmGivesNanAsScipy) {
  const RdmMatrix flat_rdm = RdmMatrix::Ones(4, 4) - RdmMatrix::Identity(4, 4);
  const RdmMatrix other = tv_test::read_rdm("small4_euclidean.npy");
  EXPECT_TRUE(std::isnan(correlate_rdms(flat_rdm, other, RdmCorrelation::pearson)));
  EXPECT_TRUE(std::isnan(correlate_rdms(flat_rdm, other, RdmCorrelation::spearman)));
  EXPECT_TRUE(std::isnan(correlate_rdms(flat_rdm, other, RdmCorrelation::kendall)));
}

TEST(AverageRanks, MatchesScipyRankdataWithTies) {
  for (const std::string suffix : {"", "_large"}) {
    const auto in = tv_test::read_npy(tv_test::rsa_data("rank_input" + suffix + ".npy"));
    const auto out = tv_test::read_npy(tv_test::rsa_data("rank_output" + suffix + ".npy"));
    const Eigen::VectorXd ranks = average_ranks(Eigen::Map<const Eigen::VectorXd>(in.values.data(), in.values.size()));
    EXPECT_EQ(std::vector<double>(ranks.data(), ranks.data() + ranks.size()), out.values) << suffix;
  }
}

TEST(SquareRdm, RoundTripsScipySquareformOrder) {
  const RdmMatrix ref = tv_test::read_rdm("random_euclidean.npy");
  const Eigen::VectorXd v = strict_upper_triangle(ref);
  EXPECT_EQ(v[0], ref(0, 1));
  EXPECT_EQ(v[1], ref(0, 2));
  EXPECT_EQ(v[ref.rows() - 1], ref(1, 2));
  EXPECT_EQ(square_rdm(v), ref);
  EXPECT_EQ(num_conditions_from_pairs(3), 3);
  expect_error([] { num_conditions_from_pairs(5); }, ErrorKind::usage,
               "5 dissimilarities are not the strict upper triangle of an RDM (not N(N-1)/2)");
}

TEST(FeatureScaling, CenterAndNormalizeMatchThingsvision) {
  FeatureMatrixD x = tv_test::read_features_d("random_x.npy");
  FeatureMatrixD c = x, n = x;
  center_features(c);
  normalize_features(n);
  EXPECT_TRUE(tv_test::expect_close(flat(tv_test::read_rdm("centered.npy")), flat(Eigen::MatrixXd(c)), {1e-12, 0.0}, "center"));
  EXPECT_TRUE(tv_test::expect_close(flat(tv_test::read_rdm("normalized.npy")), flat(Eigen::MatrixXd(n)), {1e-12, 0.0}, "normalize"));
  FeatureMatrix zero = FeatureMatrix::Zero(2, 3);
  normalize_features(zero);
  EXPECT_EQ(zero, FeatureMatrix::Zero(2, 3));
}

TEST(PermutationTest, SeededNullDistributionAndPValue) {
  const RdmMatrix a = tv_test::read_rdm("random_correlation.npy");
  const RdmMatrix b = tv_test::read_rdm("random_euclidean.npy");
  for (const RdmCorrelation method : kCorrelations) {
    const PermutationResult r = permutation_test(a, b, method, 200, 7);
    EXPECT_EQ(r.observed, correlate_rdms(a, b, method));
    ASSERT_EQ(r.null_distribution.size(), 200u);
    std::int64_t at_least = 0;
    double mean = 0;
    for (const double v : r.null_distribution) {
      at_least += v >= r.observed;
      mean += v / 200;
    }
    EXPECT_DOUBLE_EQ(r.p_value, (1.0 + at_least) / 201.0);
    EXPECT_EQ(r.p_value, 1.0 / 201.0) << to_string(method) << ": strongly related RDMs";
    if (method != RdmCorrelation::cosine) {
      EXPECT_LT(std::abs(mean), 0.1) << to_string(method);
    }
    const PermutationResult again = permutation_test(a, b, method, 200, 7);
    EXPECT_EQ(again.null_distribution, r.null_distribution);
    EXPECT_NE(permutation_test(a, b, method, 200, 8).null_distribution, r.null_distribution);
  }
}

TEST(PermutationTest, NullValuesAreCorrelationsWithPermutedConditions) {
  // the rank-once fast path and the general path (NaN present) must agree with correlate_rdms
  const RdmMatrix a = tv_test::read_rdm("ties_correlation.npy");  // has NaN
  const RdmMatrix b = tv_test::read_rdm("ties_euclidean.npy");
  const PermutationResult with_nan = permutation_test(b, a, RdmCorrelation::spearman, 50, 3);
  EXPECT_EQ(with_nan.null_distribution.size(), 50u);
  for (const double v : with_nan.null_distribution) EXPECT_FALSE(std::isnan(v));
  const RdmMatrix c = tv_test::read_rdm("ties_sqeuclidean.npy");
  const PermutationResult fast = permutation_test(b, c, RdmCorrelation::spearman, 20, 5);
  RdmMatrix c_nan = c;
  c_nan(0, 5) = c_nan(5, 0) = std::nan("");  // already 0 (duplicates): dropping it changes little
  const PermutationResult slow = permutation_test(b, c_nan, RdmCorrelation::spearman, 20, 5);
  for (std::size_t k = 0; k < 20; ++k) EXPECT_NEAR(fast.null_distribution[k], slow.null_distribution[k], 0.05);
  expect_error([&] { permutation_test(b, c, RdmCorrelation::pearson, 0); }, ErrorKind::usage,
               "permutation_test: the number of permutations must be at least 1, got 0");
}

TEST(BootstrapCi, SeededIntervalContainsObservedAndDropsDuplicatePairs) {
  const RdmMatrix a = tv_test::read_rdm("random_correlation.npy");
  const RdmMatrix b = tv_test::read_rdm("random_euclidean.npy");
  const BootstrapResult r = bootstrap_ci(a, b, RdmCorrelation::spearman, 300, 0.9, 11);
  EXPECT_EQ(r.observed, correlate_rdms(a, b, RdmCorrelation::spearman));
  EXPECT_EQ(r.samples.size(), 300u);
  EXPECT_LT(r.lower, r.observed);
  EXPECT_GT(r.upper, r.observed);
  EXPECT_LT(r.upper - r.lower, 0.5);
  std::vector<double> sorted = r.samples;
  std::sort(sorted.begin(), sorted.end());
  // numpy.percentile(samples, 5), linear interpolation: position 0.05·299 = 14.95
  EXPECT_DOUBLE_EQ(r.lower, sorted[14] + 0.95 * (sorted[15] - sorted[14]));
  EXPECT_EQ(bootstrap_ci(a, b, RdmCorrelation::spearman, 300, 0.9, 11).samples, r.samples);
  // an RDM whose only structure is the zero self-dissimilarity of duplicates: with duplicate pairs
  // kept, bootstrap correlations would be inflated towards 1; dropped, they stay where they are
  const RdmMatrix rnd = tv_test::read_rdm("small4_euclidean.npy");
  const BootstrapResult tiny = bootstrap_ci(rnd, rnd, RdmCorrelation::pearson, 50, 0.95, 1);
  for (const double v : tiny.samples) EXPECT_NEAR(v, 1.0, 1e-12);
  expect_error([&] { bootstrap_ci(a, b, RdmCorrelation::pearson, 10, 1.0); }, ErrorKind::usage,
               "bootstrap_ci: level must be in (0, 1), got 1");
}

TEST(RdmFiles, NpyIsReadByNumpyAndHdf5ByTheRsatoolboxLoader) {
  tv_test::TempDir dir;
  const RdmMatrix a = tv_test::read_rdm("random_correlation.npy");
  const RdmMatrix b = tv_test::read_rdm("random_euclidean.npy");
  write_rdm_npy(dir / "rdm.npy", a);
  const auto back = tv_test::read_npy(dir / "rdm.npy");
  EXPECT_EQ(back.shape, (std::vector<std::int64_t>{a.rows(), a.cols()}));
  EXPECT_EQ(back.values, flat(a));  // symmetric: C order = column order
  char expected[64];
  std::snprintf(expected, sizeof expected, "float64 (40, 40) %.17g\n", a(0, 1));
  EXPECT_EQ(tv_test::run_capture(tv_test::python() + " -c \"import numpy as np; a = np.load('" +
                                 (dir / "rdm.npy").string() + "'); print(a.dtype, a.shape, '%.17g' % a[0, 1])\""),
            expected);

  const std::vector<std::string> conditions = [&] {
    std::vector<std::string> names;
    for (int i = 0; i < a.rows(); ++i) names.push_back("image_" + std::to_string(i) + (i == 3 ? "_long_name.jpg" : ".jpg"));
    return names;
  }();
  write_rdms_hdf5(dir / "rdms.hdf5", {a, b}, "correlation", conditions);
  const std::string report = tv_test::run_capture(tv_test::python() + " " +
                                                  (tv_test::source_dir() / "tests/reference/rsa_reference.py").string() +
                                                  " load_rdm " + (dir / "rdms.hdf5").string() + " " +
                                                  (dir / "loaded.npy").string());
  EXPECT_THAT(report, HasSubstr("\"measure\": \"correlation\""));
  EXPECT_THAT(report, HasSubstr("\"n_rdm\": 2, \"n_cond\": 40, \"dtype\": \"float64\""));
  EXPECT_THAT(report, HasSubstr("\"version\": \"0.0.1\""));
  EXPECT_THAT(report, HasSubstr("\"image_0.jpg\", \"image_1.jpg\", \"image_2.jpg\", \"image_3_long_name.jpg\", \"image_4.jpg\""));
  const auto loaded = tv_test::read_npy(dir / "loaded.npy");
  ASSERT_EQ(loaded.shape, (std::vector<std::int64_t>{2, 40, 40}));
  std::vector<double> expected_values = flat(a);
  const std::vector<double> fb = flat(b);
  expected_values.insert(expected_values.end(), fb.begin(), fb.end());
  EXPECT_EQ(loaded.values, expected_values);
  expect_error([&] { write_rdms_hdf5(dir / "bad.hdf5", {a}, "correlation", {"x"}); }, ErrorKind::usage,
               "write_rdms_hdf5: 1 condition names for 40 conditions ('" + (dir / "bad.hdf5").string() + "')");
  expect_error([&] { write_rdm_npy(dir / "missing" / "rdm.npy", a); }, ErrorKind::io,
               "cannot write '" + (dir / "missing" / "rdm.npy").string() + "': No such file or directory");
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"loaded.npy", "rdm.npy", "rdms.hdf5"}));  // no temporaries left
}

// A failed write names the file and the OS's reason: here a file size limit (RLIMIT_FSIZE, with
// SIGXFSZ ignored) below the .npy's 12928 bytes makes write(2) fail with EFBIG.
TEST(RdmFiles, NpyWriteFailureNamesTheOsReason) {
  tv_test::TempDir dir;
  const RdmMatrix a = tv_test::read_rdm("random_correlation.npy");
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const thingsvision::Error e = tv_test::catch_error([&] { write_rdm_npy(dir / "rdm.npy", a); });
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(e.kind(), ErrorKind::io);
  EXPECT_STREQ(e.what(), ("cannot write '" + (dir / "rdm.npy").string() + "': " + std::strerror(EFBIG)).c_str());
  EXPECT_STREQ(std::strerror(EFBIG), "File too large");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));  // the temporary file is removed
}

TEST(RdmsFromArray, AcceptsSquareVectorStackedAndRejectsOthers) {
  const RdmMatrix a = tv_test::read_rdm("small4_euclidean.npy");
  const Eigen::VectorXd v = strict_upper_triangle(a);
  std::vector<double> square(a.data(), a.data() + a.size());
  EXPECT_EQ(rdms_from_array({4, 4}, square, "a.npy").at(0), a);
  std::vector<double> vec(v.data(), v.data() + v.size());
  EXPECT_EQ(rdms_from_array({6}, vec, "a.npy").at(0), a);
  std::vector<double> two = vec;
  two.insert(two.end(), vec.begin(), vec.end());
  const auto stacked = rdms_from_array({2, 6}, two, "a.h5");
  ASSERT_EQ(stacked.size(), 2u);
  EXPECT_EQ(stacked[1], a);
  std::vector<double> cube = square;
  cube.insert(cube.end(), square.begin(), square.end());
  EXPECT_EQ(rdms_from_array({2, 4, 4}, cube, "a.mat").size(), 2u);
  expect_error([&] { rdms_from_array({5}, std::vector<double>(5), "b.npy"); }, ErrorKind::input,
               "'b.npy' does not hold RDMs: shape (5) is neither N×N nor a vector of N(N-1)/2 dissimilarities");
  expect_error([&] { rdms_from_array({2, 3, 4}, std::vector<double>(24), "c.npy"); }, ErrorKind::input,
               "'c.npy' does not hold RDMs: shape (2×3×4) is neither N×N, K×N×N nor (K×)N(N-1)/2");
}
