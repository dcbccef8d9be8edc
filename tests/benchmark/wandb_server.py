"""A W&B server on 127.0.0.1 that speaks exactly what ``Api().artifact(...).download()`` uses.

Contract test helper for wandb==0.31.0 (pinned in pyproject): the GraphQL operations go through
the bundled wandb-core service, so their names and response shapes are wandb's internal wire
format, read from the installed client (``wandb/sdk/artifacts/_generated/fragments.py``,
``wandb/apis/_generated/get_default_entity.py``, ``wandb/sdk/internal/_generated/
server_features_query.py``, and the ``query Viewer`` text inside ``bin/wandb-core``). A newer
wandb may ask for other fields: update the shapes here and the pin together.

Answers: Viewer, GetDefaultEntity, ServerFeaturesQuery, ArtifactMembershipByName,
FetchArtifactManifest, GetArtifactMembershipFileUrls, the manifest GET and the file GETs; 200
``{"data": {}}`` to anything else (telemetry included). ``mode`` picks a failure: ``401`` (every
POST), ``not_found`` (no such membership), ``truncate`` (files cut off half-way), ``hang``
(file downloads never answer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_OP = re.compile(r"(?:query|mutation)\s+(\w+)")


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class FakeWandbServer:
    """``with FakeWandbServer(files, metadata=...) as srv: srv.url``; ``srv.operations`` is the log."""

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        entity: str = "ent",
        project: str = "proj",
        name: str = "model",
        version: int = 3,
        metadata: dict[str, Any] | None = None,
        mode: str = "ok",
    ) -> None:
        self.files, self.entity, self.project, self.name = files, entity, project, name
        self.version, self.metadata, self.mode = version, metadata or {}, mode
        self.operations: list[str] = []
        self.auth_headers: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeWandbServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ responses
    def _project(self) -> dict[str, Any]:
        return {
            "id": "UHJvamVjdDox",
            "internalId": "1",
            "name": self.project,
            "entity": {"name": self.entity},
        }

    def _artifact(self) -> dict[str, Any]:
        return {
            "__typename": "Artifact",
            "id": "QXJ0aWZhY3Q6MQ==",
            "artifactSequence": {
                "__typename": "ArtifactSequence",
                "name": self.name,
                "project": self._project(),
            },
            "versionIndex": self.version,
            "artifactType": {"name": "model"},
            "description": None,
            "metadata": json.dumps(self.metadata),
            "ttlDurationSeconds": -1,
            "ttlIsInherited": True,
            "tags": [],
            "historyStep": None,
            "state": "COMMITTED",
            "size": sum(len(b) for b in self.files.values()),
            "digest": md5_b64(b"".join(self.files.values())),
            "digestAlgorithm": "MANIFEST_MD5",
            "commitHash": "0" * 12,
            "fileCount": len(self.files),
            "createdAt": "2025-01-01T00:00:00",
            "updatedAt": None,
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": {
                p: {"digest": md5_b64(b), "size": len(b)} for p, b in sorted(self.files.items())
            },
        }

    def graphql(self, op: str, variables: dict[str, Any]) -> dict[str, Any]:
        viewer = {"id": "VXNlcjox", "entity": self.entity}
        if op == "Viewer":
            return {
                "viewer": {
                    **viewer,
                    "username": "tester",
                    "email": "tester@example.com",
                    "flags": "{}",
                    "teams": {"edges": []},
                }
            }
        if op == "GetDefaultEntity":
            return {"viewer": viewer}
        if op == "ServerFeaturesQuery":
            return {"serverInfo": {"features": []}}
        if op == "ArtifactMembershipByName":
            wanted = {f"{self.name}:v{self.version}", f"{self.name}:latest"}
            if self.mode == "not_found" or variables.get("name") not in wanted:
                return {"project": {"artifactCollectionMembership": None}}
            collection = {
                "__typename": "ArtifactSequence",
                "name": self.name,
                "project": self._project(),
            }
            return {
                "project": {
                    "artifactCollectionMembership": {
                        "__typename": "ArtifactCollectionMembership",
                        "id": "TWVtYmVyc2hpcDox",
                        "versionIndex": self.version,
                        "createdAt": "2025-01-01T00:00:00",
                        "aliases": [
                            {"__typename": "ArtifactAlias", "id": "QTox", "alias": "latest"}
                        ],
                        "artifactCollection": collection,
                        "artifact": self._artifact(),
                    }
                }
            }
        if op == "FetchArtifactManifest":
            return {
                "artifact": {"currentManifest": {"file": {"directUrl": self.url + "/manifest"}}}
            }
        if op == "GetArtifactMembershipFileUrls":
            edges = [
                {"node": {"__typename": "File", "name": p, "directUrl": f"{self.url}/files/{p}"}}
                for p in sorted(self.files)
            ]
            page = {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}
            files = {"pageInfo": page, "edges": edges}
            return {
                "project": {
                    "artifactCollection": {
                        "__typename": "ArtifactSequence",
                        "artifactMembership": {"files": files},
                    }
                }
            }
        return {}

    # ------------------------------------------------------------------ HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: bytes, length: int | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/manifest":
                    server.operations.append("GET manifest")
                    return self._send(200, json.dumps(server.manifest()).encode())
                if self.path.startswith("/files/"):
                    name = self.path.removeprefix("/files/")
                    server.operations.append(f"GET {name}")
                    body = server.files[name]
                    if server.mode == "hang":  # a download that never finishes
                        time.sleep(60)
                    if server.mode == "truncate":
                        self._send(200, body[: len(body) // 2], length=len(body))
                        self.close_connection = True
                        return None
                    return self._send(200, body)
                return self._send(200, b"{}")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                body = body if isinstance(body, dict) else {}
                match = _OP.search(str(body.get("query", "")))
                op = body.get("operationName") or (match.group(1) if match else "")
                if op:
                    server.operations.append(op)
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                if server.mode == "401":
                    return self._send(401, b'{"errors": [{"message": "unauthorized"}]}')
                data = server.graphql(op, body.get("variables") or {}) if op else {}
                return self._send(200, json.dumps({"data": data}).encode())

            def log_message(self, *args: object) -> None:
                pass

        return Handler
