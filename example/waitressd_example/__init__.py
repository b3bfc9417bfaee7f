"""The example app served by the README's run command: a tiny Pyramid app."""
import os

from pyramid.config import Configurator
from pyramid.response import Response


def hello(request):
    greeting = request.registry.settings.get("greeting", "Hello")
    return Response(f"{greeting} from waitressd (pid {os.getpid()})\n",
                    content_type="text/plain")


def environ(request):
    keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
            "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme")
    return {k: request.environ.get(k) for k in keys}


def main(global_config, **settings):
    """PasteDeploy app factory (entry point `paste.app_factory` `main`)."""
    with Configurator(settings=settings) as config:
        config.add_route("hello", "/")
        config.add_view(hello, route_name="hello")
        config.add_route("environ", "/environ")
        config.add_view(environ, route_name="environ", renderer="json")
        return config.make_wsgi_app()
