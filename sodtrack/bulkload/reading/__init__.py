"""Reading an upload: a CSV or XLSX file in, typed rows with their issues out."""
