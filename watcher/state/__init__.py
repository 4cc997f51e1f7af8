"""What the watcher keeps in its state directory: the ledger and the read cursors."""
