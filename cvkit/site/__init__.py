"""The course website: a static site built with Sphinx and MyST-NB from the notebooks `cvkit run` executed."""
