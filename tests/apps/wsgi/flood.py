"""A response that outgrows a client that never reads (`/flood`: 1 GiB in 64 KiB chunks, so the
app thread waits on back-pressure while the app runs; `/big`: 32 MiB in one piece, so it waits
after the app returned, before the client's next request), and a small one (`/`) for everybody
else."""
CHUNK = b"x" * 65536
BIG = b"y" * (32 << 20)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/flood":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(16384))
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [BIG]
    start_response("200 OK", [("Content-Length", "5")])
    return [b"small"]
