"""What a scan gives for one photo (torch-free): a classifier's tile map or a segmenter's crack mask
(:mod:`.maps`), the CSV columns it writes (:mod:`.columns`), its pictures (:mod:`.pictures`) and the tile geometry
they are drawn from (:mod:`.tiling`). Above the runtime, below the writers (the scan folder, the report)."""
