"""The log source: follow files matching globs with inotify and scan what they gain."""
