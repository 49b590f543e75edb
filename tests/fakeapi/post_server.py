"""The HTTP server every receiver double shares (Kafka REST, Splunk HEC, webhook): threaded,
HTTP/1.1 keep-alive, on 127.0.0.1 and a free port, silent; each POST goes to one callable."""

import http.server
import json
import threading


class PostServer:
    def __init__(self, on_post):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                on_post(self)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class UpDownReceiver:
    """A webhook receiver (NDJSON bodies) that can be switched between down (503, nothing
    kept) and up (200, each record's id kept in order): a sink's outage and its return."""

    def __init__(self):
        self.up = False
        self.ids = []
        self.lock = threading.Lock()
        self.server = PostServer(self._post)
        self.url = self.server.url
        self.port = self.server.srv.server_address[1]

    def _post(self, h):
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        up = self.up
        if up:
            with self.lock:
                self.ids.extend(json.loads(ln)["id"] for ln in body.decode().split("\n")
                                if ln.strip())
        h.send_response(200 if up else 503)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def got(self):
        with self.lock:
            return list(self.ids)

    def stop(self):
        self.server.stop()
