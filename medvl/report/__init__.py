"""Drafts: generation, the Draft object, drafting in batches, and exports (text, JSON, DICOM SR, FHIR)."""
