import threading

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path


def hello(request):
    return HttpResponse(settings.GREETING)


def info(request):
    return JsonResponse(
        {
            "thread": threading.current_thread().name,
            "server_software": request.META.get("SERVER_SOFTWARE"),
            "multiprocess": request.META.get("wsgi.multiprocess"),
        }
    )


urlpatterns = [path("hello/", hello), path("info/", info)]
