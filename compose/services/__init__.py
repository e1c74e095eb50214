"""The servers of the local stack, in start order."""
