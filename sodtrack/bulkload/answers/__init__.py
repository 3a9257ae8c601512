"""The answers: one result per row, the results and rejects files, the messages."""
