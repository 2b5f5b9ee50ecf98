"""The REST client with TensorFlow, Keras and tensorflow-text refused: run by tests/serving/test_client.py.

Usage: ``python -I rest_client_without_tensorflow.py PACKAGE_DIR ANSWER_JSON``; prints a JSON report.

``seq2seq_keras`` is put in ``sys.modules`` as a bare package (``PACKAGE_DIR`` as its ``__path__``,
its ``__init__`` not run), so this checks exactly what serving.py and translation.py import,
whatever the package ``__init__`` does; a finder in front of every other one refuses TensorFlow,
Keras and tensorflow-text. The REST client then talks over a real socket to a stand-in server
(http.server) that answers every ``:predict`` with ``ANSWER_JSON``, as TF Serving would.
"""

import importlib.abc
import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORBIDDEN = ("tensorflow", "keras", "tensorflow_text")


class Forbid(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"the REST client imported {name}")
        return None


sys.meta_path.insert(0, Forbid())
package = types.ModuleType("seq2seq_keras")
package.__path__ = [sys.argv[1]]
sys.modules["seq2seq_keras"] = package
from seq2seq_keras.serving import RestClient  # noqa: E402

ANSWER = json.loads(sys.argv[2])
requests_seen = []


class Predict(BaseHTTPRequestHandler):
    def do_POST(self):
        requests_seen.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Predict)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = RestClient(f"http://127.0.0.1:{server.server_address[1]}", "tiny")
out = client.translate(["나는 학생이다", b"\xff\xfe"])
client.close()
server.shutdown()
print(
    json.dumps(
        {
            "requests": requests_seen,
            "translations": [
                dict(vars(t), attention=t.attention.tolist(), attention_dtype=str(t.attention.dtype)) for t in out
            ],
            "forbidden_loaded": sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN),
            "files": [sys.modules[m].__file__ for m in ("seq2seq_keras.serving.client", "seq2seq_keras.translation")],
        }
    )
)
