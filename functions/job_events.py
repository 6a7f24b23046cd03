"""Event Grid trigger: the workspace's run events. Our finished pipeline job becomes a registered
model and a deployment in progress; a failed or canceled one becomes a report.

Accepts the Event Grid schema (`func.EventGridEvent`) and CloudEvents 1.0 (`func.CloudEvent`):
azure.functions decodes either into this one parameter.
"""

import logging

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("job_events")
@bp.event_grid_trigger(arg_name="event")
def job_events(event: func.EventGridEvent) -> None:
    from shared.entry.app_wiring import job_event_handler

    outcome = job_event_handler(event)
    logging.getLogger("chatft").info("chatft job_event.done %s", outcome)
