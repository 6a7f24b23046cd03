"""The Event Grid subscriptions that feed chatft's functions, read through azure-mgmt-eventgrid
(a CLI dependency for `chatft doctor`; never deployed).

A webhook destination's URL is write-only on a plain GET (`endpoint_url` comes back empty, only
`endpoint_base_url` without the query), so its `functionName` is read with `get_full_url`; the
`code` key in that URL is dropped at once and never logged or returned.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.domain.wiring import Route, webhook_target


def _resource_group(resource_id: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else ""


def topics_on(client: Any, source_matches: Any) -> list[Any]:
    """The system topics whose source resource id satisfies `source_matches(id_lowercase)`."""
    return [t for t in client.system_topics.list_by_subscription() if source_matches((t.source or "").lower())]


def routes(client: Any, topic: Any) -> list[Route]:
    """Every event subscription of one system topic."""
    group = _resource_group(topic.id or "")
    found = []
    for sub in client.system_topic_event_subscriptions.list_by_system_topic(group, topic.name):
        destination = sub.destination
        if destination is None and sub.delivery_with_resource_identity is not None:
            destination = sub.delivery_with_resource_identity.destination
        kind = (getattr(destination, "endpoint_type", "") or "").lower()
        path = function = resource_id = host = ""
        if kind == "webhook":
            url = getattr(destination, "endpoint_url", None) or ""
            if not url:
                url = (
                    client.system_topic_event_subscriptions.get_full_url(group, topic.name, sub.name).endpoint_url or ""
                )
            path, function = webhook_target(url)
            host = urlsplit(url).hostname or ""
        elif kind == "azurefunction":
            resource_id = getattr(destination, "resource_id", "") or ""
        flt = sub.filter
        found.append(
            Route(
                topic=topic.name,
                name=sub.name,
                provisioning_state=str(sub.provisioning_state or ""),
                event_types=tuple(flt.included_event_types or ()) if flt else (),
                subject_begins_with=(flt.subject_begins_with or "") if flt else "",
                subject_ends_with=(flt.subject_ends_with or "") if flt else "",
                webhook_path=path,
                webhook_function=function,
                webhook_host=host,
                function_resource_id=resource_id,
                dead_letter=sub.dead_letter_destination is not None
                or sub.dead_letter_with_resource_identity is not None,
            )
        )
    return found
