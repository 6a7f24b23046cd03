"""An in-memory Azure Resource Manager for the two reads `chatft doctor` makes over REST (shared/azure/arm.py),
served as an azure-core transport, so the real pipeline, request building, paging and error parsing run.

Shapes, as the REST references give them:
- `GET /subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId eq '{id}'
  &api-version=2022-04-01` -> `{"value": [RoleAssignment], "nextLink"?}`, each `{"id", "name", "type",
  "properties": {"roleDefinitionId", "principalId", "principalType", "scope"}}`
  (learn.microsoft.com/rest/api/authorization/role-assignments/list-for-subscription; azure-rest-api-specs
  specification/authorization/.../2022-04-01/authorization-RoleAssignmentsCalls.json).
- `POST .../Microsoft.Web/sites/{name}/config/appsettings/list?api-version=2024-04-01` -> a StringDictionary
  `{"id", "name": "appsettings", "type": "Microsoft.Web/sites/config", "properties": {name: value}}`
  (learn.microsoft.com/rest/api/appservice/web-apps/list-application-settings).
- errors: ARM's `{"error": {"code", "message"}}` with the status (403 `AuthorizationFailed` for a caller without
  the read permission).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.aml_rest import RestResponse
from tests.transport import InMemoryTransport

HOST = "management.azure.com"
ROLE_DEFINITION = "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"


@dataclass
class ArmService(InMemoryTransport):
    subscription: str
    assignments: list[dict[str, str]] = field(default_factory=list)
    """principalId, role (definition GUID) and scope of each assignment."""
    sites: dict[str, dict[str, str]] = field(default_factory=dict)
    """(resource group/site) -> app settings."""
    refuse: set[str] = field(default_factory=set)
    """'roleAssignments' or 'appsettings': answer 403 AuthorizationFailed."""
    page_size: int = 2
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def assign(self, principal: str, role_id: str, scope: str) -> None:
        self.assignments.append({"principalId": principal, "role": role_id, "scope": scope})

    def send(self, request: Any, **kwargs: Any) -> RestResponse:
        url = urlsplit(request.url)
        query = dict(parse_qsl(url.query))
        self.requests.append((request.method, url.path, query))
        assert url.scheme == "https" and url.netloc == HOST, f"not ARM: {request.url}"
        assert request.headers.get("Authorization", "").startswith("Bearer "), "ARM needs a bearer token"
        status, payload = self._dispatch(request.method, url.path, query)
        headers = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": str(uuid.uuid4())}
        return RestResponse(request, status, json.dumps(payload).encode(), headers)

    def _refused(self, what: str) -> tuple[int, Any]:
        message = f"The client does not have authorization to perform action over {what}."
        return 403, {"error": {"code": "AuthorizationFailed", "message": message}}

    def _dispatch(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        listing = re.fullmatch(r"/subscriptions/([^/]+)/providers/Microsoft\.Authorization/roleAssignments", path)
        if method == "GET" and listing:
            assert query.get("api-version") == "2022-04-01"
            if "roleAssignments" in self.refuse:
                return self._refused("Microsoft.Authorization/roleAssignments/read")
            principal = re.fullmatch(r"principalId eq '([^']+)'", query.get("$filter", ""))
            assert principal, f"unsupported filter {query.get('$filter')!r}"
            mine = [a for a in self.assignments if a["principalId"] == principal.group(1)]
            start = int(query.get("skip", "0"))
            page = mine[start : start + self.page_size]
            body: dict[str, Any] = {"value": [self._assignment(a) for a in page]}
            if start + self.page_size < len(mine):
                filt = query["$filter"].replace("'", "%27").replace(" ", "%20")
                body["nextLink"] = (
                    f"https://{HOST}{path}?$filter={filt}&api-version=2022-04-01&skip={start + self.page_size}"
                )
            return 200, body
        settings = re.fullmatch(
            r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Web/sites/([^/]+)/config/appsettings/list",
            path,
        )
        if method == "POST" and settings:
            assert query.get("api-version") == "2024-04-01"
            if "appsettings" in self.refuse:
                return self._refused("Microsoft.Web/sites/config/list/action")
            key = f"{settings.group(2)}/{settings.group(3)}"
            if key not in self.sites:
                return 404, {"error": {"code": "ResourceNotFound", "message": f"site {key} not found"}}
            return 200, {
                "id": f"{path.removesuffix('/list')}",
                "name": "appsettings",
                "type": "Microsoft.Web/sites/config",
                "location": "East US",
                "properties": dict(self.sites[key]),
            }
        raise AssertionError(f"the ARM test service has no route for {method} {path}")

    def _assignment(self, a: dict[str, str]) -> dict[str, Any]:
        name = str(uuid.uuid4())
        return {
            "id": f"{a['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": ROLE_DEFINITION.format(sub=self.subscription, role=a["role"]),
                "principalId": a["principalId"],
                "principalType": "User",
                "scope": a["scope"],
            },
        }
