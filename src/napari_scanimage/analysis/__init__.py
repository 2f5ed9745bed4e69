"""Analysis without a GUI: ROIs and their traces."""
