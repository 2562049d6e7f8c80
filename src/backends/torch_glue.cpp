// torch_glue.cpp — placeholder; implemented by its component's work.
