"""The napari plugin: reader, sample data and docks (everything that imports napari or Qt)."""
