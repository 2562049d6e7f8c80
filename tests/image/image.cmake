# tv_image. Issue #3: decoding and transforms against PIL 9.4 + torchvision 0.14 (Debian) references.
find_package(ZLIB REQUIRED)
set(TV_IMAGE_DATA ${TV_TEST_DATA_DIR}/image)
set(TV_OPENCV_DOC_DATA /usr/share/doc/opencv-doc/examples/data)
tv_add_fixture(image_generated
  ${THINGSVISION_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/make_test_images.py
  ${TV_IMAGE_DATA} ${TV_OPENCV_DOC_DATA}/baboon.jpg)
tv_add_fixture(pil_reference
  ${THINGSVISION_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/pil_reference.py
  ${TV_IMAGE_DATA}/reference ${TV_OPENCV_DOC_DATA} ${TV_IMAGE_DATA}/generated ${TV_IMAGE_DATA}/damaged)
set_tests_properties(fixture_pil_reference PROPERTIES FIXTURES_REQUIRED image_generated)

tv_add_test(image_test SOURCES image_test.cpp COMPONENTS tv_image FIXTURES pil_reference
            LIBS ZLIB::ZLIB nlohmann_json::nlohmann_json JPEG::JPEG)
tv_add_test(transforms_test SOURCES transforms_test.cpp COMPONENTS tv_image FIXTURES pil_reference
            LIBS ZLIB::ZLIB nlohmann_json::nlohmann_json)
target_compile_definitions(image_test PRIVATE TV_OPENCV_DOC_DATA="${TV_OPENCV_DOC_DATA}")
target_compile_definitions(transforms_test PRIVATE TV_OPENCV_DOC_DATA="${TV_OPENCV_DOC_DATA}")

# ImageDataset (folder order, file lists, file_names.txt) and DataLoader tests.
tv_add_test(dataset_test SOURCES dataset_test.cpp COMPONENTS tv_image)
tv_add_test(data_loader_test SOURCES data_loader_test.cpp COMPONENTS tv_image
            LIBS opencv_core opencv_imgcodecs)
