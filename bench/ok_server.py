"""An HTTP server on 127.0.0.1 answering 204 to every GET, for the http tasks of bench/.

    python bench/ok_server.py PORT_FILE     (writes the port it listens on, then serves)

``bench/compare_checkouts.py`` imports ``Ok`` and serves it on a thread.
"""

import http.server
import os
import sys


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    with open(sys.argv[1] + ".tmp", "w") as file:
        file.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])  # whole, or not there yet
    server.serve_forever()
