"""A tiny CIFAR-10 in the official layout, and a throwaway HTTP server to download it from.

Used by the data tests and the trainer's tests (their fixtures are in conftest.py).
"""
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading

import numpy as np

from train import data

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(data_dir, train_per_batch=16, test_count=32, seed=0):
    """Write a small CIFAR-10 in the official layout into data_dir/cifar-10-batches-py.

    Returns {"train": (rows (N, 3072) uint8, labels (N,)), "test": (...)} as written.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(data_dir, data.FOLDER)
    os.makedirs(folder, exist_ok=True)

    def batch(name, count):
        rows = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        content = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels], b"data": rows,
                   b"filenames": [f"{i}.png".encode() for i in range(count)]}
        with open(os.path.join(folder, name), "wb") as file:
            pickle.dump(content, file, protocol=2)
        return rows, labels

    train = [batch(name, train_per_batch) for name in data.TRAIN_FILES]
    test = batch("test_batch", test_count)
    with open(os.path.join(folder, data.META_FILE), "wb") as file:
        pickle.dump({b"label_names": [name.encode() for name in CLASS_NAMES],
                     b"num_cases_per_batch": train_per_batch, b"num_vis": 3072}, file, protocol=2)
    return {"train": (np.concatenate([r for r, _ in train]), np.concatenate([l for _, l in train])),
            "test": test}


def make_archive(source_dir):
    """A .tar.gz (bytes) of source_dir's cifar-10-batches-py folder, as the official archive is laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(os.path.join(source_dir, data.FOLDER), arcname=data.FOLDER)
    return buffer.getvalue()


class Server:
    """An HTTP server on 127.0.0.1 serving ``files`` {path: bytes}; ``truncate`` sends only part
    of each body while announcing its full length."""

    def __init__(self, files, truncate=False):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 3] if owner.truncate else body)

            def log_message(self, *args):
                pass

        self.files, self.truncate = files, truncate
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
