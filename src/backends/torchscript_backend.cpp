// torchscript_backend.cpp — placeholder; implemented by its component's work.
