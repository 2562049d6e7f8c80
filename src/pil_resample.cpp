// pil_resample.cpp — placeholder; implemented by its component's work.
