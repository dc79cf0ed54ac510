"""Benchmarks of the generated project against bare arq and minimal FastAPI: `tox -e bench`."""
