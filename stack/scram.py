"""SCRAM-SHA-256 password verifiers, computed on the client as ``psql``'s ``\\password`` does.

Sending the verifier instead of the password keeps the clear text out of the server's
logs and statistics, even when a statement fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_sha256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The string PostgreSQL stores in ``pg_authid.rolpassword`` for ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    # PostgreSQL applies SASLprep; NFKC is its core and is exact for ASCII passwords.
    normalized = unicodedata.normalize("NFKC", password).encode()
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return f"SCRAM-SHA-256${ITERATIONS}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
