"""The offline world: the embedded local backend (jobs, registry, scoring servers), Azurite and the host runner; never deployed."""
