"""Timer trigger: delete idle endpoints that chatft created (GPUs bill by the hour)."""

import logging

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("endpoint_janitor")
@bp.timer_trigger(arg_name="timer", schedule="%JANITOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
def endpoint_janitor(timer: func.TimerRequest) -> None:
    from shared.entry.app_wiring import janitor_handler

    if timer.past_due:
        logging.getLogger("chatft").warning("chatft janitor.past_due the timer is running late; running now")
    janitor_handler()
