// extract_features.cpp — the library from C++: load a model, preprocess as its sidecar says, stream an
// image folder through it, write one module's features to OUT_DIR/<module>/features.npy (as tv-extract
// does) and relate the images with an RDM.
//   extract_features MODEL.pt IMAGE_DIR MODULE OUT_DIR
#include <filesystem>
#include <iostream>
#include <memory>

#include <thingsvision.hpp>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: extract_features MODEL.pt IMAGE_DIR MODULE OUT_DIR\n";
    return 2;
  }
  try {
    namespace tv = thingsvision;
    tv::set_num_threads(2);
    const std::filesystem::path model_file = argv[1];
    tv::Model model = tv::Model::load(model_file);
    // The preprocessing the model was exported with (models/export.py writes MODEL.json); a
    // preset such as Transform::preset("thingsvision") is only right for weights trained with it.
    const std::filesystem::path sidecar = tv::sidecar_path(model_file);
    const tv::Transform transform = std::filesystem::exists(sidecar) ? tv::Transform::from_sidecar(sidecar)
                                                                     : tv::Transform::preset("thingsvision");
    std::cout << "preprocessing from " << (std::filesystem::exists(sidecar) ? "the sidecar" : "the preset") << "\n";
    const tv::ImageDataset dataset = tv::ImageDataset::open(argv[2]);
    tv::DataLoader loader(dataset, transform, {/*batch_size=*/4});

    const std::string module = argv[3];
    std::unique_ptr<tv::FeatureWriter> writer;  // opened at the first batch, when the row shape is known
    tv::FeatureMatrix features;                 // rows = images, columns = features (for the RDM)
    tv::ImageBatch batch;
    while (loader.next(batch)) {
      const tv::Activations out = model.extract(batch, {module}).front();
      if (!writer) {
        const std::vector<std::int64_t> row_shape(out.shape.begin() + 1, out.shape.end());
        writer = tv::open_feature_writer(tv::OutputFormat::npy, std::filesystem::path(argv[4]) / module, row_shape);
      }
      writer->append_batch(out.values.data(), out.shape);
      const auto first_row = features.rows();
      features.conservativeResize(first_row + out.num_rows(), out.row_size());
      std::copy(out.values.begin(), out.values.end(), features.data() + first_row * out.row_size());
      std::cout << "batch of " << batch.num_images << ": " << module << " shape [";
      for (std::size_t i = 0; i < out.shape.size(); ++i) std::cout << (i ? ", " : "") << out.shape[i];
      std::cout << "]\n";
    }
    writer->commit(dataset.file_names());  // features.npy + file_names.txt appear only now
    std::cout << "wrote " << module << "/features.npy: " << writer->rows_written() << " rows\n";
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
