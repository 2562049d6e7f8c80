// extract_features.cpp — the library from C++: load a model, stream an image folder through it,
// keep one module's features in memory and relate the images with an RDM.
//   extract_features MODEL.pt IMAGE_DIR MODULE
#include <cstdio>
#include <iostream>

#include <thingsvision.hpp>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: extract_features MODEL.pt IMAGE_DIR MODULE\n";
    return 2;
  }
  try {
    namespace tv = thingsvision;
    tv::set_num_threads(2);
    tv::Model model = tv::Model::load(argv[1]);
    const tv::ImageDataset dataset = tv::ImageDataset::open(argv[2]);
    tv::DataLoader loader(dataset, tv::Transform::preset("thingsvision"), {/*batch_size=*/4});

    const std::string module = argv[3];
    tv::FeatureMatrix features;  // rows = images, columns = features
    tv::ImageBatch batch;
    while (loader.next(batch)) {
      const tv::Activations out = model.extract(batch, {module}).front();
      const auto first_row = features.rows();
      features.conservativeResize(first_row + out.num_rows(), out.row_size());
      std::copy(out.values.begin(), out.values.end(), features.data() + first_row * out.row_size());
      std::cout << "batch of " << batch.num_images << ": " << module << " shape [";
      for (std::size_t i = 0; i < out.shape.size(); ++i) std::cout << (i ? ", " : "") << out.shape[i];
      std::cout << "]\n";
    }
    const Eigen::MatrixXd rdm = tv::compute_rdm(features, tv::RdmMethod::correlation);
    std::cout << dataset.size() << " images, " << features.cols() << " features, RDM "
              << rdm.rows() << "x" << rdm.cols() << "\n";
    for (const auto& name : dataset.file_names()) std::cout << name << "\n";
    return 0;
  } catch (const thingsvision::Error& e) {
    std::cerr << "extract_features: error: " << e.what() << "\n";
    return thingsvision::exit_code(e.kind());
  }
}
