# ImageDataset (folder order, file lists, file_names.txt) and DataLoader tests.
tv_add_test(dataset_test SOURCES dataset_test.cpp COMPONENTS tv_image)
tv_add_test(data_loader_test SOURCES data_loader_test.cpp COMPONENTS tv_image
            LIBS opencv_core opencv_imgcodecs)
