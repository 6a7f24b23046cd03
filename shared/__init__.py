"""chatft: everything behind the Azure Functions handlers (domain, adapters, CLI)."""
