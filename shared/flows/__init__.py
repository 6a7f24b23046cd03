"""Use cases: what happens to an upload, a run event, a reconciler tick and a janitor run, through the adapters."""
