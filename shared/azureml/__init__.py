"""Azure ML adapter. `workspace` is the protocol everything else talks to; only `client` and
`pipeline` import azure.ai.ml, and only when first used (it costs ~1 s to import)."""
