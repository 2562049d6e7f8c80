// transforms.cpp — placeholder; implemented by its component's work.
