"""The request handler: dispatch by method and path, authorization, readiness, informational routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .constants import PROTECTED, TGI_VERSION, UNHEALTHY
from .openai_routes import OpenAIRoutes
from .parsing import ApiError, Body, Rejection
from .transport import Server


class Handler(OpenAIRoutes):
    """Routing (auth, methods, readiness) and the informational routes."""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def do_OPTIONS(self) -> None:
        self._read_body()
        self.send(
            200,
            headers={
                "access-control-allow-origin": "*",
                "access-control-allow-methods": "GET,POST",
                "access-control-allow-headers": "content-type",
            },
        )

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        method = "GET" if self.command == "HEAD" else self.command
        get_routes: dict[str, Callable[[], None]] = {
            "/": self.health,
            "/health": self.health,
            "/ping": self.health,
            "/info": self.route_info,
            "/metrics": self.route_metrics,
            "/v1/models": self.route_models,
            "/mock/state": self.route_state,
            "/docs": self.route_docs,
            "/api-doc/openapi.json": self.route_openapi,
        }
        post_routes: dict[str, Callable[[Any, Body], None]] = {
            "/": self.route_compat,
            "/generate": self.route_generate,
            "/generate_stream": self.route_stream,
            "/v1/chat/completions": self.route_chat,
            "/v1/completions": self.route_completions,
            "/invocations": self.route_invocations,
            "/vertex": self.route_vertex,
            "/tokenize": self.route_tokenize,
            "/chat_tokenize": self.route_chat_tokenize,
        }
        mock_posts: dict[str, Callable[[], None]] = {"/mock/unhealthy": self.route_sicken}
        if cast(Server, self.server).metrics_only:
            get_routes, post_routes, mock_posts = {"/metrics": self.route_metrics}, {}, {}
        self.responded = False
        try:
            raw = self._read_body()
            if path in PROTECTED and not (path == "/" and method == "GET") and not self._authorized():
                self.send(401)
            elif method == "GET" and path in get_routes:
                get_routes[path]()
            elif method == "POST" and path in mock_posts:
                mock_posts[path]()
            elif method == "POST" and path in post_routes:
                data, body = self._json(raw)
                if path not in {"/tokenize", "/chat_tokenize"} and not self.app.healthy():
                    self.send_json(503, UNHEALTHY)
                else:
                    post_routes[path](data, body)
            elif path in get_routes or path in post_routes or path in mock_posts:
                allow = ",".join(
                    m
                    for m, routes in (("GET,HEAD", get_routes), ("POST", post_routes | mock_posts))
                    if path in routes
                )
                self.send(405, headers={"allow": allow})
            else:
                self.send(404)
        except Rejection as rej:
            self.send(rej.status, rej.text.encode(), "text/plain; charset=utf-8")
        except ApiError as err:
            self.send_error_json(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a mock bug must not look like a dropped connection
            self.app.log.error(f"mock internal error on {self.command} {path}: {exc!r}")
            self.close_connection = True
            if not self.responded:
                self.send_json(500, {"error": f"mock internal error: {exc!r}", "error_type": "mock_internal"})

    # -- informational routes
    def health(self) -> None:
        if self.app.healthy():
            self.send(200)
        else:
            self.send_json(503, UNHEALTHY)

    def route_info(self) -> None:
        self.send_json(200, self.app.info())

    def route_models(self) -> None:
        model = self.app.s.model_id
        self.send_json(
            200,
            {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": model}]},
        )

    def route_metrics(self) -> None:
        self.send(200, self.app.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def route_state(self) -> None:
        self.send_json(200, self.app.state())

    def route_sicken(self) -> None:
        """Mock-only fault: from now on /health (and every generation route) answers 503 unhealthy,
        the process and its port stay up; only a restart heals it."""
        self.app.sick.set()
        self.app.log.error("health check failed: the shard does not answer (POST /mock/unhealthy)",
                           target="text_generation_router::server")
        self.send(204)

    def route_docs(self) -> None:
        html = (
            "<!doctype html><title>Text Generation Inference</title><a href=/api-doc/openapi.json>OpenAPI</a>"
        )
        self.send(200, html.encode(), "text/html; charset=utf-8")

    def route_openapi(self) -> None:
        paths = {p: {"post": {"tags": ["Text Generation Inference"]}} for p in sorted(PROTECTED)}
        self.send_json(
            200,
            {
                "openapi": "3.0.3",
                "info": {
                    "title": "Text Generation Inference",
                    "license": {"name": "Apache 2.0"},
                    "version": TGI_VERSION,
                },
                "paths": paths,
            },
        )

    def route_invocations(self, data: Any, body: Body) -> None:
        """SageMaker route: dispatch on the request shape."""
        if isinstance(data, dict) and "messages" in data:
            self.route_chat(data, body)
        elif isinstance(data, dict) and "prompt" in data:
            self.route_completions(data, body)
        else:
            self.route_compat(data, body)
