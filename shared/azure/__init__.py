"""Adapters to Azure services: Blob and Table storage, Azure ML, Azure Monitor; each SDK imported lazily."""
