"""卫东区 resident-services chatbot: knowledge → chunking → embeddings → index → retrieval → answer → chat → web."""
