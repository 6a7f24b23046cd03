"""Azure ML adapter: the `shared.domain.workspace.Workspace` protocol on MLClient. Only `client` and
`pipeline` import azure.ai.ml, and only when first used (it costs ~1 s to import)."""
