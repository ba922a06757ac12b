"""Stream processing: the Faust worker (thin adapter) around the pure batch core."""
