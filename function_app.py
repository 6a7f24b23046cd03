"""Composition root: the FunctionApp and its blueprints. Nothing else belongs here."""

import azure.functions as func

from functions.ingest import bp as ingest_bp
from functions.janitor import bp as janitor_bp
from functions.job_events import bp as job_events_bp
from functions.reconciler import bp as reconciler_bp

app = func.FunctionApp()
app.register_functions(ingest_bp)
app.register_functions(job_events_bp)
app.register_functions(reconciler_bp)
app.register_functions(janitor_bp)
