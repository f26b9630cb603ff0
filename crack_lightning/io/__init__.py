"""Reading images and finding them on disk (torch-free)."""
