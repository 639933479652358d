"""Exports of a selection for annotation tools (Label Studio, COCO 1.0 for CVAT)."""
