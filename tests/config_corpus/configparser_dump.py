"""Dump an INI file as Python's configparser reads it for PasteDeploy (stdlib only).

Usage: python3 configparser_dump.py FILE.ini [FILE.ini ...]
Prints one line per file, each one JSON object: {"defaults": [[key, value]...], "sections": [[name, [[key, value]...]]...]}
where a value that fails to interpolate is {"error": "<exception class>"}, or, if the file
cannot be read, {"error": "<exception class>", "line": N}. Mirrors paste.deploy.loadwsgi's
NicerConfigParser: keys keep their case, `here` and `__file__` are defaults.
"""
import configparser
import json
import os
import sys


def value(parser, section, key):
    try:
        return parser.get(section, key)
    except configparser.Error as e:
        return {"error": type(e).__name__}


def main(path):
    abspath = os.path.abspath(path)
    parser = configparser.ConfigParser(
        defaults={"here": os.path.dirname(abspath), "__file__": abspath}
    )
    parser.optionxform = str
    try:
        with open(path) as f:
            parser.read_file(f)
    except configparser.ParsingError as e:
        line = e.errors[0][0] if type(e) is configparser.ParsingError else e.lineno
        return {"error": type(e).__name__, "line": line}
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError) as e:
        return {"error": type(e).__name__, "line": e.lineno}
    except UnicodeDecodeError as e:
        return {"error": type(e).__name__, "line": None}
    return {
        "defaults": [[k, value(parser, "DEFAULT", k)] for k in parser.defaults()],
        "sections": [
            [s, [[k, value(parser, s, k)] for k in parser.options(s)]]
            for s in parser.sections()
        ],
    }


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(main(path)))
