"""The arq worker: `arq {{ cookiecutter.package_name }}.worker.main.WorkerSettings`."""
