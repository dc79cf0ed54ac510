"""{{ cookiecutter.project_slug }}: a FastAPI service with background jobs on arq."""
