"""A local fake OpenAI-compatible chat server for tests (the data teacher, the evaluation judge).

It binds 127.0.0.1 only, answers a bounded number of requests and then stops by itself."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class FakeChatServer:
    """Answers chat completions with `reply(prompt)`, records what it was sent, stops after `max_requests`."""

    def __init__(self, reply, max_requests=100, status=200):
        self.requests = []
        self.done = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                content = reply(body["messages"][-1]["content"])
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5  # an idle server gives up after 5 s per request slot
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.serve, args=(max_requests,), daemon=True)
        self.thread.start()

    def serve(self, max_requests):
        for _ in range(max_requests):
            self.server.handle_request()
            if self.done.is_set():
                break
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.done.set()
