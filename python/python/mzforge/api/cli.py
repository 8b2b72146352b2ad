"""``mzforge-api``: serve (the default), migrate, create-user, create-token."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mzforge-api",
        description="The mzforge analysis API. Configuration comes from environment variables "
        "(DATABASE_URL, MZFORGE_DATA_DIR, MZFORGE_UPLOADS_BUCKET, MZFORGE_RESULTS_BUCKET, "
        "MZFORGE_STATE_MACHINE_ARN, ...; see the README).",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP server (the default command)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--log-level", default="info")
    sub.add_parser("migrate", help="bring the database schema up to date")
    cu = sub.add_parser("create-user", help="create a user and print a new token")
    cu.add_argument("email")
    cu.add_argument("--admin", action="store_true", help="may create users through the API")
    ct = sub.add_parser("create-token", help="print a new token for an existing user")
    ct.add_argument("email")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from .db import User, make_engine, make_sessionmaker, migrate
    from .settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as e:
        print(f"mzforge-api: error: {e}", file=sys.stderr)
        return 2
    command = args.command or "serve"
    if command == "serve":
        import uvicorn

        from .app import create_app

        uvicorn.run(create_app(settings), host=getattr(args, "host", "127.0.0.1"),
                    port=getattr(args, "port", 8080), log_level=getattr(args, "log_level", "info"),
                    timeout_graceful_shutdown=10)
        return 0
    migrate(settings.database_url)
    if command == "migrate":
        print("database is up to date")
        return 0
    from .auth import create_user, new_token

    engine = make_engine(settings.database_url, timeouts=settings.db_timeouts)
    with make_sessionmaker(engine)() as s:
        if command == "create-user":
            try:
                _, token = create_user(s, args.email, is_admin=args.admin)
            except ValueError as e:
                print(f"mzforge-api: error: {e}", file=sys.stderr)
                return 1
        else:
            user = s.scalars(select(User).where(User.email == args.email)).first()
            if user is None:
                print(f"mzforge-api: error: no user {args.email}", file=sys.stderr)
                return 1
            token = new_token(s, user)
        s.commit()
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
