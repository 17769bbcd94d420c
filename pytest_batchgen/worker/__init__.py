"""What runs where a lesson item runs (an xdist worker, or the one process of -n 0):
author one lesson, gate it, write it, keep what could not be written.

Nothing here imports the controller side, and nothing here writes a batch-level
file: a lesson's result travels back in its test report.
"""
