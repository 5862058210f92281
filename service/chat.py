"""`python -m service.chat`: the terminal chat (see service/chat_cli.py)."""

from service.chat_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
