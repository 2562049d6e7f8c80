// clip_tokenizer.cpp — placeholder; implemented by its component's work.
