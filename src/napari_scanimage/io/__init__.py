"""Reading ScanImage TIFF and `.siff` files: page indexing, metadata, pixels and photons."""
