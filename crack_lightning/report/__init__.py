"""The scan's report page (torch-free), made from the scan folder's CSV files and pictures."""
