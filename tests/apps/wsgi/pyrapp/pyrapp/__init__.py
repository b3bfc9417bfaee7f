"""A small Pyramid app, loaded from production.ini through PasteDeploy (egg:pyrapp)."""
import logging
import os

from pyramid.config import Configurator
from pyramid.response import Response

log = logging.getLogger(__name__)


def home(request):
    log.warning("pyrapp home view called")
    return {
        "here_dir": request.registry.settings.get("here_dir"),
        "greeting": request.registry.settings.get("greeting_text"),
        "script_name": request.script_name,
        "path_info": request.path_info,
        "pid": os.getpid(),
    }


def boom(request):
    raise RuntimeError("pyrapp boom")


def form(request):
    return Response("name=%s" % request.POST.get("name", ""), content_type="text/plain")


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.add_view(home, route_name="home", renderer="json")
        config.add_route("boom", "/boom")
        config.add_view(boom, route_name="boom")
        config.add_route("form", "/form")
        config.add_view(form, route_name="form", request_method="POST")
        return config.make_wsgi_app()
