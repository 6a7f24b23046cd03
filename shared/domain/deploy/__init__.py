"""Pure domain of deployment: endpoint and model names, provisioning states."""
