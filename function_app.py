"""Composition root: the FunctionApp and its blueprints. Nothing else belongs here."""

import azure.functions as func

from functions.ingest import bp as ingest_bp

app = func.FunctionApp()
app.register_functions(ingest_bp)
