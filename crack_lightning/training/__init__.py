"""What a Lightning run adds: callbacks, test report, precision, the prediction writer (torch)."""
