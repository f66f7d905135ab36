"""`mcutool run-camera`: frames from a webcam, a video, a folder or a test pattern,
prepared on the host per the model zoo, run on a board, decoded and drawn."""
