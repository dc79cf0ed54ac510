"""Job functions, one module each. Add yours to `WorkerSettings.functions`."""
