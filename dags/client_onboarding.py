"""Onboard one client: provision, credential, verify, share one-time links, notify, record.

The logic lives in ``include.onboarding.run``; this file only declares the
trigger form and wires the tasks. Between tasks only ids, names and ARNs
travel through XCom; every credential stays in Secrets Manager.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.onboarding.callbacks import on_task_failure
from include.onboarding.params import PARAM_DEFAULTS, PARAM_SCHEMAS

DOC_MD = """
### Client onboarding

Fill the form for a new client. The run validates the form, creates the
client's KMS key and bucket baseline, issues the requested credentials
(SDK access key, SFTP login), verifies them with the client's own
credentials, creates one one-time link per credential and emails the links
to the contacts. The client registry keeps the verification report and the
receipt ids, never a credential or link.

Set **reissue** to issue new credentials for an active client; the old access
key is disabled after the new one verified. See `docs/onboarding.md`.
"""

default_args = {
    "owner": "data-exchange-ops",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "on_failure_callback": on_task_failure,
}


def _params() -> dict[str, Param]:
    params = {}
    for name, schema in PARAM_SCHEMAS.items():
        default = PARAM_DEFAULTS[name]
        if default is None:
            params[name] = Param(**schema)
        else:
            params[name] = Param(default, **schema)
    return params


@dag(
    dag_id="client_onboarding",
    schedule=None,
    catchup=False,
    max_active_runs=4,
    default_args=default_args,
    params=_params(),
    tags=["exchange", "onboarding"],
    doc_md=DOC_MD,
    render_template_as_native_obj=True,
)
def client_onboarding():
    @task
    def validate() -> dict:
        """Validate the form values; an invalid request fails without a retry."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.onboarding import run
        from include.onboarding.params import InvalidRequestError

        context = get_current_context()
        params = {k: v for k, v in dict(context["params"]).items() if k in PARAM_DEFAULTS}
        try:
            return run.step_validate(params, context["run_id"])
        except (
            InvalidRequestError,
            run.ClientAlreadyActiveError,
            run.ReissueNotPossibleError,
        ) as exc:
            raise AirflowFailException(str(exc)) from None

    @task
    def provision(ctx: dict) -> dict:
        from include.onboarding import run

        return run.step_provision(ctx)

    @task
    def credential(ctx: dict, resources: dict) -> dict:
        from include.onboarding import run

        return run.step_credential(ctx, resources)

    @task(retries=0)
    def verify(ctx: dict, resources: dict, issued: dict) -> dict:
        """Run every check with the client's credentials; a failed check fails the run."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.onboarding import run

        try:
            return run.step_verify(ctx, resources, issued)
        except run.VerificationFailedError as exc:
            raise AirflowFailException(str(exc)) from None

    @task
    def share(ctx: dict, resources: dict, issued: dict, verified: dict) -> dict:
        from include.onboarding import run

        return run.step_share(ctx, resources, issued)

    @task
    def notify(ctx: dict, resources: dict, shared: dict) -> dict:
        from include.onboarding import run

        return run.step_notify(ctx, resources, shared)

    @task
    def record(ctx: dict, resources: dict, issued: dict, shared: dict, notified: dict) -> dict:
        from include.onboarding import run

        return run.step_record(ctx, resources, issued, shared, notified)

    ctx = validate()
    resources = provision(ctx)
    issued = credential(ctx, resources)
    verified = verify(ctx, resources, issued)
    shared = share(ctx, resources, issued, verified)
    notified = notify(ctx, resources, shared)
    record(ctx, resources, issued, shared, notified)


client_onboarding()
