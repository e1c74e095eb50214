"""The ASGI view of ``/v1/graphql``: POST/GET queries and mutations, and subscriptions
over the ``graphql-transport-ws`` protocol on the same path.

Tokens: ``Authorization: Bearer`` on the request (or the WebSocket handshake), ``?access_token=``
(browsers' WebSockets), or ``connection_init``'s payload ``{"Authorization": "Bearer <t>"}``
(or ``{"token": "<t>"}``), as graphql-transport-ws clients send it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.graphql.context import GraphQLContext
from gateway.graphql.schema import schema


def _payload_token(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    value = params.get("Authorization") or params.get("authorization") or params.get("token")
    if not isinstance(value, str):
        return None
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else value.strip()


class GraphQLView(GraphQL[GraphQLContext, None]):
    def __init__(self) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            keep_alive=True,
            keep_alive_interval=15,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphQLContext:
        return GraphQLContext.of(request, request.app.state.backend)

    async def on_ws_connect(self, context: GraphQLContext) -> Any:
        context.use_token(_payload_token(getattr(context, "connection_params", None)))
        return await super().on_ws_connect(context)
