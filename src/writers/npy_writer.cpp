// npy_writer.cpp — placeholder; implemented by its component's work.
