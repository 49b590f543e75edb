"""The HTTP server every receiver double shares (Kafka REST, Splunk HEC, webhook): threaded,
HTTP/1.1 keep-alive, on 127.0.0.1 and a free port, silent; each POST goes to one callable."""

import http.server
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
