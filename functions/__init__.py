"""One Azure Functions Blueprint module per trigger. Handlers stay thin: parse, call shared, log."""
