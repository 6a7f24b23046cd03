"""Publish lifecycle events to an Event Grid custom topic as CloudEvents (azure-eventgrid, imported lazily).

`EventGridPublisherClient(endpoint, credential)` for a basic (custom) topic hands the events to its
legacy client (azure/eventgrid/_patch.py, `EventGridPublisherClient.__init__`: no `namespace_topic`),
whose `send` turns each azure.core `CloudEvent` into the wire model with its extensions as extra
attributes and POSTs them as `application/cloudevents-batch+json` (azure/eventgrid/_legacy/
_publisher_client.py `send`, _legacy/_helpers.py `_cloud_event_to_generated`, `_build_request`);
anything but 200 raises (`map_error`, else HttpResponseError).

With EVENTS_NAMESPACE_TOPIC set, the endpoint is an Event Grid namespace's and `namespace_topic=` selects the
generated namespace client (same file, the `else` branch), whose `send` POSTs the serialized CloudEvents to
`/topics/<topic>:publish?api-version=2024-06-01` as `application/cloudevents-batch+json`
(azure/eventgrid/_operations/_patch.py `send`, _operations/_operations.py
`build_event_grid_publisher_send_events_request`). A namespace accepts only Entra ID or access keys, not SAS.

A publish must never hold up the step that emits it: one try per call (`retry_total=0`; the outbox
tries again on the next reconciler tick) and short timeouts.

Credentials: an https endpoint gets the app's token credential (shared.azure.identity: managed
identity, AZURE_CLIENT_ID honoured), scope https://eventgrid.azure.net/.default, which needs the
EventGrid Data Sender role on the topic. An http:// endpoint is a local sink (the local runner):
azure-core sends bearer tokens only over TLS, so it gets a placeholder key (`aeg-sas-key: local`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.domain.lifecycle_events import CID_EXTENSION, LifecycleEvent

CONNECTION_TIMEOUT = 5
READ_TIMEOUT = 10


class EventGridPublisher:
    def __init__(
        self, endpoint: str, source: str, *, credential: Any = None, namespace_topic: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.source = source
        self.namespace_topic = namespace_topic
        self._credential = credential
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from azure.eventgrid import EventGridPublisherClient

            # The basic-topic send passes the per-call options (retry_total, timeouts) on to each event's
            # wire model too, which logs a WARNING per option per event and ignores them there.
            logging.getLogger("azure.eventgrid._legacy._generated._serialization").setLevel(logging.ERROR)

            credential = self._credential
            if credential is None:
                if self.endpoint.startswith("http://"):
                    from azure.core.credentials import AzureKeyCredential

                    credential = AzureKeyCredential("local")
                else:
                    from shared.azure.identity import credential as app_credential

                    credential = app_credential()
            if self.namespace_topic:
                self._client = EventGridPublisherClient(self.endpoint, credential, namespace_topic=self.namespace_topic)
            else:
                self._client = EventGridPublisherClient(self.endpoint, credential)
        return self._client

    def cloud_event(self, event: LifecycleEvent) -> Any:
        from azure.core.messaging import CloudEvent

        extensions = {CID_EXTENSION: event.cid} if event.cid else None
        return CloudEvent(
            source=self.source,
            type=event.type,
            subject=event.subject,
            id=event.id,
            time=datetime.fromisoformat(event.time) if event.time else None,
            data=event.data,
            datacontenttype="application/json",
            extensions=extensions,
        )

    def send(self, events: list[LifecycleEvent]) -> None:
        """Publish `events` in one request; raises whatever the SDK raises (the caller decides)."""
        if not events:
            return
        self._get_client().send(
            [self.cloud_event(e) for e in events],
            retry_total=0,
            connection_timeout=CONNECTION_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
