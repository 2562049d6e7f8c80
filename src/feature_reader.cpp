// feature_reader.cpp — placeholder; implemented by its component's work.
