// rdm_plot.cpp — placeholder; implemented by its component's work.
