"""Configuration: environment variables, the optional file, and start-up checks."""
