"""A photo's scale in millimetres per pixel without being told: a printed marker card in the photo (its plane, so
that a wall photographed at an angle is measured on the wall), a GeoTIFF's pixel size, or a drone photo's metadata.
NumPy, SciPy, PIL and OpenCV; no torch."""
