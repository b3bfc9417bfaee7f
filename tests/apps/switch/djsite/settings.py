"""A minimal Django project as `django-admin startproject` makes it, trimmed to what serving needs."""
import os

SECRET_KEY = "waitressd-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "test"]
ROOT_URLCONF = "djsite.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True
GREETING = os.environ.get("DJSITE_GREETING", "hello from django")
