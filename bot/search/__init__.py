"""Search: embeddings, the Chroma + BM25 index, ingest, hybrid retrieval."""
