"""Pure domain of deployment: names, provisioning states, the smoke test's request and answer."""
