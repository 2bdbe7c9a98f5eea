"""The CLI starts light: ``commerce-gateway token`` (scripted per buyer, per test) must not pay
for SQLAlchemy, graphql-core or Strawberry, which only the commands that use them import."""

from __future__ import annotations

import subprocess
import sys

import jwt

from gateway.bootstrap.published_defaults import DEV_JWT_SECRET


def test_the_cli_module_and_the_token_command_import_no_heavy_library() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from gateway.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main(['token', '--sub', 'buyer-1', '--role', 'customer'])\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'graphql', 'strawberry', 'asyncpg') if m in sys.modules)\n"
        "print(code, ','.join(heavy) or '-', out.getvalue().strip())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={"PATH": ""}
    )
    assert done.returncode == 0, done.stderr
    code, heavy, token = done.stdout.split()
    assert (code, heavy) in {("0", "-"), ("None", "-")}
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["roles"]) == ("buyer-1", ["customer"])
