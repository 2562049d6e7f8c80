// cka_test.cpp — linear/RBF, biased/unbiased CKA against a numpy re-implementation of THINGSvision's
// CKANumPy (tests/reference/rsa_reference.py).
#include <gmock/gmock.h>

#include <Eigen/QR>
#include <cmath>

#include "rsa_test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rsa.hpp"

using namespace thingsvision;
using tv_test::expect_error;

TEST(Cka, MatchesThingsvisionFormulasForEveryVariant) {
  const auto scalars = tv_test::read_scalars();
  for (const char* name : {"random", "relu", "ties", "small4"}) {
    const FeatureMatrixD x = tv_test::read_features_d(std::string(name) + "_x.npy");
    const FeatureMatrixD y = tv_test::read_features_d(std::string(name) + "_y.npy");
    struct Variant {
      const char* tag;
      CkaKernel kernel;
      double sigma;
      bool median;
    };
    for (const Variant& v : {Variant{"linear", CkaKernel::linear, 1.0, false}, Variant{"rbf1", CkaKernel::rbf, 1.0, false},
                             Variant{"rbf3", CkaKernel::rbf, 3.0, false}, Variant{"rbfmedian", CkaKernel::rbf, 1.0, true}}) {
      for (const bool unbiased : {false, true}) {
        const std::string key = std::string("cka_") + name + "_" + v.tag + (unbiased ? "_unbiased" : "_biased");
        ASSERT_TRUE(scalars.count(key)) << key;
        CkaOptions options;
        options.kernel = v.kernel;
        options.sigma = v.sigma;
        options.median_sigma = v.median;
        options.unbiased = unbiased;
        const double ref = scalars.at(key), got = cka(x, y, options);
        EXPECT_LE(std::abs(got - ref), 1e-9 * std::abs(ref) + 1e-15) << key << ": got " << got << ", reference " << ref;
      }
    }
  }
}

TEST(Cka, FloatInputAndThreadCountGiveTheSameValue) {
  const FeatureMatrix x = tv_test::read_features_f("relu_x.npy");
  const FeatureMatrix y = tv_test::read_features_d("relu_y.npy").cast<float>();
  CkaOptions one, many;
  one.num_threads = 1;
  many.num_threads = 3;
  EXPECT_EQ(cka(x, y, one), cka(FeatureMatrixD(x.cast<double>()), FeatureMatrixD(y.cast<double>()), many));
  EXPECT_NEAR(cka(x, x), 1.0, 1e-12);
}

TEST(Cka, LinearBiasedIsInvariantToIsotropicScalingAndOrthogonalTransforms) {
  const FeatureMatrixD x = FeatureMatrixD::Random(300, 40);  // more than one streaming tile
  const FeatureMatrixD y = FeatureMatrixD::Random(300, 25);
  const Eigen::MatrixXd q = Eigen::MatrixXd::Random(40, 40).householderQr().householderQ();
  const FeatureMatrixD xq = 3.5 * x * q;
  EXPECT_NEAR(cka(x, y), cka(xq, y), 1e-12);
}

TEST(Cka, TooFewConditionsAndMismatchedRowsAreUsageErrors) {
  const FeatureMatrixD three = FeatureMatrixD::Random(3, 5);
  CkaOptions unbiased;
  unbiased.unbiased = true;
  expect_error([&] { cka(three, three, unbiased); }, ErrorKind::usage,
               "cka: unbiased CKA needs at least 4 conditions, got N = 3");
  expect_error([&] { cka(FeatureMatrixD::Random(1, 5), FeatureMatrixD::Random(1, 5)); }, ErrorKind::usage,
               "cka: needs at least 2 conditions, got N = 1");
  expect_error([&] { cka(three, FeatureMatrixD::Random(4, 5)); }, ErrorKind::usage,
               "cka: X and Y must have the same number of rows (conditions), got 3 and 4");
  CkaOptions median;
  median.kernel = CkaKernel::rbf;
  median.median_sigma = true;
  expect_error([&] { cka(FeatureMatrixD::Ones(3, 3), three, median); }, ErrorKind::usage,
               "cka: the median heuristic needs distinct rows, but all rows of X are identical");
  EXPECT_EQ(parse_cka_kernel("rbf"), CkaKernel::rbf);
  expect_error([] { parse_cka_kernel("poly"); }, ErrorKind::usage, "unknown CKA kernel 'poly'; expected linear or rbf");
}
