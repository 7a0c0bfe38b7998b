"""Knowledge: articles as files, the importers that write them, chunking, upload validation."""
