"""Pictures (overlays, thumbnails, colour bars) and the scan's report page (torch-free)."""
