"""A PasteDeploy filter for the [pipeline:main]: stamps every response."""


def stamp_filter_factory(global_conf, header="X-Stamp", value="pipeline"):
    def filter(app):
        def stamped(environ, start_response):
            def sr(status, headers, exc_info=None):
                return start_response(status, headers + [(header, value)], exc_info)

            return app(environ, sr)

        return stamped

    return filter
