// rsa_statistics.cpp — placeholder; implemented by its component's work.
