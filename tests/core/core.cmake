# tv_core: Error, Device, closest_names, SHA-256.
tv_add_test(core_test SOURCES core_test.cpp)
