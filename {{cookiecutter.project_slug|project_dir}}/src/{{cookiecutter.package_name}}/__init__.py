"""A FastAPI service with background jobs on arq."""
