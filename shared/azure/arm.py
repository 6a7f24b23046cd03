"""Two Azure Resource Manager reads for `chatft doctor`, over REST with azure-core (no management package for
either): a principal's role assignments, and a function app's settings. Both are reads; neither changes anything.

- Role assignments: `GET /subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments?$filter=
  principalId eq '{id}'&api-version=2022-04-01`, which returns the principal's assignments at, above and below the
  subscription (learn.microsoft.com/rest/api/authorization/role-assignments/list-for-subscription), paged by
  `nextLink`. Needs `Microsoft.Authorization/roleAssignments/read` (Reader).
- App settings: `POST .../Microsoft.Web/sites/{name}/config/appsettings/list?api-version=2024-04-01`, a
  StringDictionary whose `properties` hold the settings (learn.microsoft.com/rest/api/appservice/web-apps/
  list-application-settings). Needs `Microsoft.Web/sites/config/list/action` (Website Contributor), which the
  person who deployed the app has. Only the names leave this module's caller; values are never printed.

Errors are azure-core's `HttpResponseError` with the ARM error body parsed (`.error.code`), as the generated
management clients raise them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.domain.roles import Assignment

ARM = "https://management.azure.com"
SCOPE = "https://management.azure.com/.default"
ROLE_ASSIGNMENTS_API = "2022-04-01"
WEB_API = "2024-04-01"
MAX_PAGES = 50
"""A principal with more than 50 pages of assignments is not one chatft made; stop there."""


class ArmReads:
    def __init__(self, credential: Any, subscription_id: str, *, base_url: str = ARM, transport: Any = None) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        self.subscription_id = subscription_id
        self.base_url = base_url.rstrip("/")
        pipeline = [
            policies.HeadersPolicy({"Accept": "application/json"}),
            policies.UserAgentPolicy(sdk_moniker="chatft-doctor"),
            policies.RetryPolicy(retry_total=2, timeout=30),
            policies.BearerTokenCredentialPolicy(credential, SCOPE),
            policies.NetworkTraceLoggingPolicy(),
        ]
        extra = {"transport": transport} if transport is not None else {}
        self._client = PipelineClient(base_url=self.base_url, policies=pipeline, **extra)

    def _send(self, method: str, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        response = self._client.send_request(HttpRequest(method, url, params=params))
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        payload = response.json()
        if not isinstance(payload, dict):
            raise HttpResponseError(message=f"{method} {url}: the answer is not a JSON object", response=response)
        return payload

    def role_assignments(self, principal_id: str) -> list[Assignment]:
        """The principal's role assignments at, above and below this subscription."""
        url: str | None = (
            f"{self.base_url}/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/roleAssignments"
        )
        params: dict[str, str] | None = {
            "$filter": f"principalId eq '{principal_id}'",
            "api-version": ROLE_ASSIGNMENTS_API,
        }
        found: list[Assignment] = []
        for _ in range(MAX_PAGES):
            if not url:
                break
            page = self._send("GET", url, params)
            for item in page.get("value") or []:
                props = (item or {}).get("properties") or {}
                if props.get("roleDefinitionId") and props.get("scope") is not None:
                    found.append(Assignment(str(props["roleDefinitionId"]), str(props["scope"])))
            url, params = page.get("nextLink"), None
        return found

    def app_settings(self, resource_group: str, site: str) -> dict[str, str]:
        """The function app's settings (names and values; callers keep only the names)."""
        url = (
            f"{self.base_url}/subscriptions/{self.subscription_id}/resourceGroups/{quote(resource_group)}"
            f"/providers/Microsoft.Web/sites/{quote(site)}/config/appsettings/list"
        )
        props = self._send("POST", url, {"api-version": WEB_API}).get("properties") or {}
        return {str(k): str(v) for k, v in props.items()}
