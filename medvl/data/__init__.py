"""Data: manifests, MONAI transforms, cached datasets, and synthetic phantom studies."""
