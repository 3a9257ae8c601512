"""What an operator reads: the cells a row's answer is about, the results and rejects files."""
