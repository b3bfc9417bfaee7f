"""PasteDeploy factory for envapp (found through --pythonpath / the cwd)."""
import envapp


def factory(global_conf, **settings):
    return envapp.app
