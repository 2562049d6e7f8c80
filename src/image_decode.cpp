// image_decode.cpp — placeholder; implemented by its component's work.
