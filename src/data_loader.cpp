// data_loader.cpp — placeholder; implemented by its component's work.
