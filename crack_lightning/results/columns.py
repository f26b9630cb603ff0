"""The headers of a scan's CSV files, which the results write (:mod:`crack_lightning.results.maps`) and the report
page reads back (:mod:`crack_lightning.report`)."""

# A classifier's scan: a row per tile (tiles.csv) and per photo (photos.csv).
TILE_COLUMNS = ["photo", "x", "y", "width", "height", "crack_probability", "label"]
PHOTO_COLUMNS = ["photo", "width", "height", "tiles", "crack_tiles", "max_crack_probability", "label", "error"]

# A row per crack (crack_lightning.measure.cracks.Crack's fields) and per photo.
CRACK_COLUMNS = [
    "photo",
    "crack",
    "x",
    "y",
    "width",
    "height",
    "length_px",
    "mean_width_px",
    "max_width_px",
    "length_mm",
    "mean_width_mm",
    "max_width_mm",
    "width_class",
]
CRACK_PHOTO_COLUMNS = [
    "photo",
    "width",
    "height",
    "cracks",
    "total_length_px",
    "mean_width_px",
    "max_width_px",
    "total_length_mm",
    "mean_width_mm",
    "max_width_mm",
    "mm_per_px",  # the photo's scale (a marker's: at its centre; the cracks are measured on its plane)
    "scale_source",  # option, marker, geotiff, exif or none
    "max_crack_probability",
    "label",
    "scale_note",  # why a marker or metadata found was not used; what an estimate rests on
    "error",
]
