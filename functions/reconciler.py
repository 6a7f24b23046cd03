"""Timer trigger: the deployment reconciler. The host runs timer functions as singletons (a blob
lease), so one tick at a time moves every deployment in progress forward; nothing here waits
on a long-running operation."""

import logging

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("deploy_reconciler")
@bp.timer_trigger(arg_name="timer", schedule="%DEPLOY_RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def deploy_reconciler(timer: func.TimerRequest) -> None:
    from shared.entry.app_wiring import reconcile_handler

    if timer.past_due:
        logging.getLogger("chatft").warning("chatft reconcile.past_due the timer is running late")
    reconcile_handler()
