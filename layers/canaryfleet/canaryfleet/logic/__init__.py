"""What the platform does, independent of how AWS is reached."""
