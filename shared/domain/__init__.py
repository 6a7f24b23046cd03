"""Pure domain: the rules of chat data, fine-tuning, deployment, the ledger and the janitor; no Azure SDK."""
